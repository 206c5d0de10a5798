//! Squarified treemap layout (Bruls, Huizing and van Wijk, 2000): rectangles whose areas
//! are proportional to their weights, tiling a given rectangle, as close to squares as
//! rows allow.

/// An axis-aligned rectangle; `x` grows to the right, `y` downwards.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

impl Rect {
    pub fn area(&self) -> f64 {
        self.width * self.height
    }

    /// This rectangle with `top` taken off its top and `side` off each other edge;
    /// `None` when too little would be left.
    pub fn inset(&self, top: f64, side: f64) -> Option<Rect> {
        let inner = Rect {
            x: self.x + side,
            y: self.y + top,
            width: self.width - 2.0 * side,
            height: self.height - top - side,
        };
        (inner.width > 0.0 && inner.height > 0.0).then_some(inner)
    }
}

/// Splits `area` into one rectangle per weight, in the order of `weights`, each with an
/// area in proportion to its weight. Together they tile `area` exactly (up to rounding):
/// rows are laid along the shorter side, and each row's last rectangle and the last row
/// reach the far edge. Zero weights get empty rectangles; all zero, all are empty.
pub fn squarify(weights: &[u64], area: Rect) -> Vec<Rect> {
    let empty = Rect {
        width: 0.0,
        height: 0.0,
        ..area
    };
    let mut rects = vec![empty; weights.len()];
    #[allow(clippy::cast_precision_loss, reason = "a layout in pixels")]
    let total: f64 = weights.iter().map(|&weight| weight as f64).sum();
    if total <= 0.0 || area.area() <= 0.0 {
        return rects;
    }
    // Biggest first, as the algorithm wants; the result keeps the caller's order.
    let mut order: Vec<usize> = (0..weights.len()).filter(|&i| weights[i] > 0).collect();
    order.sort_by(|&a, &b| weights[b].cmp(&weights[a]).then(a.cmp(&b)));
    let scale = area.area() / total;
    #[allow(clippy::cast_precision_loss, reason = "a layout in pixels")]
    let areas: Vec<f64> = order.iter().map(|&i| weights[i] as f64 * scale).collect();

    let mut free = area;
    let mut start = 0;
    while start < areas.len() {
        let side = free.width.min(free.height);
        let mut end = start + 1;
        while end < areas.len()
            && worst(&areas[start..=end], side) <= worst(&areas[start..end], side)
        {
            end += 1;
        }
        let last_row = end == areas.len();
        let row_area: f64 = areas[start..end].iter().sum();
        let placed = lay_row(&areas[start..end], row_area, &mut free, last_row);
        for (&index, rect) in order[start..end].iter().zip(placed) {
            rects[index] = rect;
        }
        start = end;
    }
    rects
}

/// The worst aspect ratio of a row of `areas` laid along a side of length `side`.
fn worst(areas: &[f64], side: f64) -> f64 {
    let sum: f64 = areas.iter().sum();
    let (smallest, largest) = areas.iter().fold((f64::INFINITY, 0.0_f64), |(lo, hi), &a| {
        (lo.min(a), hi.max(a))
    });
    let side2 = side * side;
    let sum2 = sum * sum;
    (side2 * largest / sum2).max(sum2 / (side2 * smallest))
}

/// Lays one row along the shorter side of `free` and takes it off `free`.
fn lay_row(areas: &[f64], row_area: f64, free: &mut Rect, last_row: bool) -> Vec<Rect> {
    let mut rects = Vec::with_capacity(areas.len());
    if free.width >= free.height {
        // A column at the left edge.
        let thickness = if last_row {
            free.width
        } else {
            row_area / free.height
        };
        let mut y = free.y;
        for (i, &a) in areas.iter().enumerate() {
            let height = if i + 1 == areas.len() {
                free.y + free.height - y
            } else {
                a / thickness
            };
            rects.push(Rect {
                x: free.x,
                y,
                width: thickness,
                height,
            });
            y += height;
        }
        free.x += thickness;
        free.width -= thickness;
    } else {
        // A row at the top edge.
        let thickness = if last_row {
            free.height
        } else {
            row_area / free.width
        };
        let mut x = free.x;
        for (i, &a) in areas.iter().enumerate() {
            let width = if i + 1 == areas.len() {
                free.x + free.width - x
            } else {
                a / thickness
            };
            rects.push(Rect {
                x,
                y: free.y,
                width,
                height: thickness,
            });
            x += width;
        }
        free.y += thickness;
        free.height -= thickness;
    }
    rects
}

#[cfg(test)]
mod tests {
    use super::*;

    const AREA: Rect = Rect {
        x: 10.0,
        y: 20.0,
        width: 600.0,
        height: 400.0,
    };

    /// Weights of many sizes, from a fixed linear congruential sequence.
    fn mixed_weights(count: usize) -> Vec<u64> {
        let mut state: u64 = 0x2545_f491;
        (0..count)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                1 + (state >> 33) % 1_000_000 / (1 + (state >> 60))
            })
            .collect()
    }

    fn overlap(a: &Rect, b: &Rect) -> f64 {
        let width = (a.x + a.width).min(b.x + b.width) - a.x.max(b.x);
        let height = (a.y + a.height).min(b.y + b.height) - a.y.max(b.y);
        width.max(0.0) * height.max(0.0)
    }

    fn assert_tiles(weights: &[u64], area: Rect) {
        let rects = squarify(weights, area);
        assert_eq!(rects.len(), weights.len());
        let total: u64 = weights.iter().sum();
        let epsilon = 1e-6 * area.area();
        let covered: f64 = rects.iter().map(Rect::area).sum();
        assert!(
            (covered - area.area()).abs() < epsilon,
            "{covered} of {}",
            area.area()
        );
        for (rect, &weight) in rects.iter().zip(weights) {
            assert!(rect.width >= 0.0 && rect.height >= 0.0, "{rect:?}");
            assert!(
                rect.x >= area.x - 1e-9 && rect.y >= area.y - 1e-9,
                "{rect:?}"
            );
            assert!(
                rect.x + rect.width <= area.x + area.width + 1e-9,
                "{rect:?}"
            );
            assert!(
                rect.y + rect.height <= area.y + area.height + 1e-9,
                "{rect:?}"
            );
            #[allow(clippy::cast_precision_loss, reason = "test weights are small")]
            let expected = area.area() * weight as f64 / total as f64;
            assert!(
                (rect.area() - expected).abs() < epsilon,
                "weight {weight}: area {} instead of {expected}",
                rect.area()
            );
        }
        for (i, a) in rects.iter().enumerate() {
            for b in &rects[i + 1..] {
                assert!(overlap(a, b) < epsilon, "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn rectangles_tile_the_area_in_proportion_to_their_weights_without_overlap() {
        assert_tiles(&[6, 6, 4, 3, 2, 2, 1], AREA);
        assert_tiles(&[1], AREA);
        assert_tiles(&[1, 1_000_000], AREA);
        assert_tiles(&mixed_weights(300), AREA);
        let tall = Rect {
            width: 50.0,
            height: 900.0,
            ..AREA
        };
        assert_tiles(&mixed_weights(40), tall);
    }

    #[test]
    fn results_keep_the_order_of_the_weights() {
        let rects = squarify(&[1, 3, 2], AREA);
        assert!(rects[1].area() > rects[2].area() && rects[2].area() > rects[0].area());
    }

    #[test]
    fn zero_weights_get_empty_rectangles() {
        let rects = squarify(&[0, 5, 0, 5], AREA);
        assert!(rects[0].area() <= 0.0 && rects[2].area() <= 0.0);
        assert!((rects[1].area() - AREA.area() / 2.0).abs() < 1e-6);
        assert!(
            squarify(&[0, 0], AREA)
                .iter()
                .all(|rect| rect.area() == 0.0)
        );
        assert!(squarify(&[], AREA).is_empty());
    }

    #[test]
    fn rows_stay_close_to_squares() {
        // The paper's example: no cell is a sliver.
        let area = Rect {
            x: 0.0,
            y: 0.0,
            width: 6.0,
            height: 4.0,
        };
        for rect in squarify(&[6, 6, 4, 3, 2, 2, 1], area) {
            let ratio = (rect.width / rect.height).max(rect.height / rect.width);
            assert!(ratio < 4.0, "{rect:?}");
        }
    }
}
