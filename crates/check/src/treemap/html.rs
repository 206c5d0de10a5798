//! The treemap as one self-contained HTML page: every shape an absolutely placed `div`
//! laid out here, so the page reads the same with scripts off (each shape's details are
//! its `title`); the one inline script only draws nicer hover boxes. Nothing is fetched:
//! the page's content security policy allows no source but its own inline style and
//! script.

use std::fmt::Write as _;

use cudapkgs_tree::units::{bytes, percent};

use super::layout::{Rect, squarify};
use super::{Node, NodeKind, Treemap, store_name};

/// The map's size in CSS pixels.
const WIDTH: f64 = 1200.0;
const HEIGHT: f64 = 720.0;
/// Room for the name of a shape with shapes inside, and the margin around them.
const HEADER: f64 = 16.0;
const MARGIN: f64 = 2.0;

const STYLE: &str = r#"
body { font: 13px/1.4 system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 18px; margin: 0 0 4px; }
#map { position: relative; background: #eee; }
.shape { position: absolute; box-sizing: border-box; overflow: hidden;
  border: 1px solid rgba(0, 0, 0, 0.35); white-space: nowrap; text-overflow: ellipsis; }
.shape:hover { outline: 2px solid #000; z-index: 1; }
.shape[data-kind="other"] { background: repeating-linear-gradient(45deg, #ddd 0 4px, #ccc 4px 8px); }
.label { display: block; padding: 0 3px; font-size: 11px; line-height: 15px;
  overflow: hidden; text-overflow: ellipsis; pointer-events: none; }
.shape[data-kind="path"] > .label, .shape[data-kind="distribution"] > .label { font-weight: 600; }
#architectures { list-style: none; padding: 0; margin: 4px 0 10px; }
#architectures li { display: inline-block; margin-right: 14px; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px;
  border: 1px solid rgba(0, 0, 0, 0.35); vertical-align: -1px; }
#tip { position: absolute; z-index: 2; max-width: 480px; padding: 4px 6px; white-space: pre-line;
  background: #fff; border: 1px solid #888; box-shadow: 0 1px 4px rgba(0, 0, 0, 0.3);
  pointer-events: none; overflow-wrap: anywhere; }
"#;

/// The hover box: each shape's `title` moves to `data-tip`, so the browser's own
/// tooltip does not show as well.
const SCRIPT: &str = r#"
(function () {
  var map = document.getElementById("map");
  var tip = document.getElementById("tip");
  var shapes = map.querySelectorAll(".shape");
  for (var i = 0; i < shapes.length; i++) {
    shapes[i].setAttribute("data-tip", shapes[i].getAttribute("title"));
    shapes[i].removeAttribute("title");
  }
  map.addEventListener("mousemove", function (event) {
    var shape = event.target.closest(".shape");
    if (!shape) { tip.hidden = true; return; }
    tip.textContent = shape.getAttribute("data-tip");
    tip.style.left = event.pageX + 14 + "px";
    tip.style.top = event.pageY + 14 + "px";
    tip.hidden = false;
  });
  map.addEventListener("mouseleave", function () { tip.hidden = true; });
})();
"#;

/// The whole page.
pub fn render_html(treemap: &Treemap) -> String {
    let total = treemap.total_bytes();
    let roots: Vec<&str> = treemap.roots.iter().map(|root| store_name(root)).collect();
    let mut page = String::with_capacity(4096 + 512 * treemap.files);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n",
    );
    // An empty icon, so that no browser asks for /favicon.ico.
    page.push_str("<link rel=\"icon\" href=\"data:,\">\n");
    let _ = writeln!(
        page,
        "<title>Closure of {}</title>",
        escape(&roots.join(", "))
    );
    let _ = writeln!(page, "<style>{STYLE}</style>\n</head>\n<body>");
    let _ = writeln!(page, "<h1>Closure of {}</h1>", escape(&roots.join(", ")));
    let _ = writeln!(page, "<p id=\"totals\">{}</p>", totals(treemap));
    page.push_str(&architectures(treemap));
    let _ = writeln!(
        page,
        "<div id=\"map\" style=\"width:{WIDTH}px;height:{HEIGHT}px\">"
    );
    let weights: Vec<u64> = treemap.groups.iter().map(|group| group.bytes).collect();
    let area = Rect {
        x: 0.0,
        y: 0.0,
        width: WIDTH,
        height: HEIGHT,
    };
    for (index, (group, rect)) in treemap
        .groups
        .iter()
        .zip(squarify(&weights, area))
        .enumerate()
    {
        draw(group, rect, path_hue(index), total, &mut page);
    }
    page.push_str("</div>\n<div id=\"tip\" role=\"tooltip\" hidden></div>\n");
    let _ = writeln!(page, "<script>{SCRIPT}</script>\n</body>\n</html>");
    page
}

/// `1.2 MiB (1234567 bytes) in 3 store paths and 41 files; device code: 310.5 KiB (25.1%)`
/// (or in distributions, for a folder's closure).
fn totals(treemap: &Treemap) -> String {
    let total = treemap.total_bytes();
    let device_code = treemap.device_code_bytes();
    let plural = |count: usize, one: &str, many: &str| {
        format!("{count} {}", if count == 1 { one } else { many })
    };
    let device_code = if device_code == 0 {
        "no device code".to_owned()
    } else {
        format!(
            "device code: {} ({})",
            bytes(device_code),
            percent(device_code, total)
        )
    };
    format!(
        "Total: {} ({total} bytes) in {} and {}; {device_code}",
        bytes(total),
        match treemap.groups.first().map(|group| group.kind) {
            Some(NodeKind::Distribution) => {
                plural(treemap.groups.len(), "distribution", "distributions")
            }
            _ => plural(treemap.groups.len(), "store path", "store paths"),
        },
        plural(treemap.files, "file", "files"),
    )
}

/// The closure's device code per architecture, with the colours of its shapes.
fn architectures(treemap: &Treemap) -> String {
    if treemap.device_code.is_empty() {
        return String::new();
    }
    let mut list = String::from("<ul id=\"architectures\">\n");
    for total in &treemap.device_code {
        let label = crate::device::label(total);
        let _ = writeln!(
            list,
            "<li><span class=\"swatch\" style=\"background:{}\"></span>{} {}</li>",
            architecture_colour(&total.arch),
            escape(&label),
            bytes(total.stored_bytes)
        );
    }
    list.push_str("</ul>\n");
    list
}

/// Writes `node` in `rect` and its children inside it, behind them in document order.
fn draw(node: &Node, rect: Rect, hue: u32, total: u64, page: &mut String) {
    if rect.area() <= 0.0 {
        return;
    }
    let (kind, background) = match node.kind {
        NodeKind::StorePath => ("path", format!("hsl({hue},40%,86%)")),
        NodeKind::Distribution => ("distribution", format!("hsl({hue},40%,86%)")),
        NodeKind::File => ("file", format!("hsl({hue},50%,72%)")),
        NodeKind::DeviceCode => ("arch", architecture_colour(&node.name)),
        NodeKind::Other => ("other", String::new()),
    };
    let background = if background.is_empty() {
        String::new()
    } else {
        format!(";background:{background}")
    };
    let label = match node.kind {
        NodeKind::StorePath => store_name(&node.name),
        _ => &node.name,
    };
    let _ = writeln!(
        page,
        "<div class=\"shape\" data-kind=\"{kind}\" data-name=\"{name}\" data-bytes=\"{bytes}\" \
         style=\"left:{x:.2}px;top:{y:.2}px;width:{w:.2}px;height:{h:.2}px{background}\" \
         title=\"{title}\"><span class=\"label\">{label}</span></div>",
        name = escape(&node.name),
        bytes = node.bytes,
        x = rect.x,
        y = rect.y,
        w = rect.width,
        h = rect.height,
        title = tooltip(node, total),
        label = escape(label),
    );
    if node.children.is_empty() {
        return;
    }
    // Room for the name when the shape is big enough, else the children cover it.
    let inner = if rect.width >= 4.0 * HEADER && rect.height >= 3.0 * HEADER {
        rect.inset(HEADER, MARGIN)
    } else {
        None
    }
    .unwrap_or(rect);
    let weights: Vec<u64> = node.children.iter().map(|child| child.bytes).collect();
    for (child, child_rect) in node.children.iter().zip(squarify(&weights, inner)) {
        draw(child, child_rect, hue, total, page);
    }
}

/// The hover text, escaped for an attribute: name, what it is, size and share, details.
fn tooltip(node: &Node, total: u64) -> String {
    let what = match node.kind {
        NodeKind::StorePath => "store path",
        NodeKind::Distribution => "distribution",
        NodeKind::File => "file",
        NodeKind::DeviceCode => "device code",
        NodeKind::Other => "other",
    };
    let mut lines = vec![
        escape(&node.name),
        what.to_owned(),
        format!(
            "{} ({} bytes), {} of the closure",
            bytes(node.bytes),
            node.bytes,
            percent(node.bytes, total)
        ),
    ];
    if !node.detail.is_empty() {
        lines.push(escape(&node.detail));
    }
    lines.join("&#10;")
}

/// Store paths' hues, spread by the golden angle so that neighbours differ.
fn path_hue(index: usize) -> u32 {
    u32::try_from(index.wrapping_mul(137) % 360).unwrap_or(0)
}

/// One colour per architecture number, the same in every file: `sm_86`, `compute_86`
/// and `sm_86a` share a hue, lighter for PTX.
fn architecture_colour(arch: &str) -> String {
    let number: u32 = arch
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(0);
    let hue = number.wrapping_mul(53) % 360;
    let lightness = if arch.starts_with("compute") { 70 } else { 52 };
    format!("hsl({hue},70%,{lightness}%)")
}

/// `text` for HTML content and quoted attributes: markup characters become entities,
/// and control characters (a file name may hold a newline) the replacement character.
pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c if c.is_control() => escaped.push('\u{fffd}'),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use cudapkgs_fatbin::{ArchTotal, EntryKind};

    fn leaf(name: &str, kind: NodeKind, bytes: u64) -> Node {
        Node {
            name: name.to_owned(),
            kind,
            bytes,
            detail: String::new(),
            children: Vec::new(),
        }
    }

    fn sample() -> Treemap {
        let file = Node {
            children: vec![
                leaf("sm_86", NodeKind::DeviceCode, 300),
                leaf("host code and data", NodeKind::Other, 700),
            ],
            ..leaf("lib/libx.so", NodeKind::File, 1000)
        };
        let odd = leaf("share/<b>\"a&b'\n.txt", NodeKind::File, 500);
        let path = Node {
            children: vec![file, odd],
            ..leaf(
                "/s/0123456789abcdfghijklmnpqrsvwxyz-x<script>-1",
                NodeKind::StorePath,
                1500,
            )
        };
        Treemap {
            roots: vec![path.name.clone()],
            groups: vec![path],
            files: 2,
            device_code: vec![ArchTotal {
                arch: "sm_86".into(),
                kind: EntryKind::Sass,
                entries: 1,
                stored_bytes: 300,
                content_bytes: 600,
            }],
        }
    }

    #[test]
    fn markup_in_names_is_escaped() {
        assert_eq!(
            escape("a<b>&\"c\"'\n"),
            "a&lt;b&gt;&amp;&quot;c&quot;&#39;\u{fffd}"
        );
        let page = render_html(&sample());
        assert!(!page.contains("<b>"), "{page}");
        assert!(!page.contains("x<script>"), "{page}");
        assert!(page.contains("share/&lt;b&gt;&quot;a&amp;b&#39;\u{fffd}.txt"));
        assert!(page.contains("<title>Closure of x&lt;script&gt;-1</title>"));
        // Exactly the page's own script.
        assert_eq!(page.matches("<script>").count(), 1);
    }

    #[test]
    fn every_node_is_one_shape_with_its_details() {
        let page = render_html(&sample());
        for (kind, count) in [("path", 1), ("file", 2), ("arch", 1), ("other", 1)] {
            let shape = format!("class=\"shape\" data-kind=\"{kind}\"");
            let found = page.matches(&shape).count();
            assert_eq!(found, count, "{kind}");
        }
        assert!(page.contains("<span class=\"label\">sm_86</span>"));
        assert!(page.contains("300 B (300 bytes), 20.0% of the closure"));
        assert!(page.contains(
            "Total: 1.5 KiB (1500 bytes) in 1 store path and 2 files; device code: 300 B (20.0%)"
        ));
    }

    #[test]
    fn the_page_asks_for_nothing_outside_itself() {
        let page = render_html(&sample());
        assert!(!page.contains("://"), "{page}");
        assert!(!page.contains(" src="), "{page}");
        assert!(page.contains("default-src 'none'"));
    }
}
