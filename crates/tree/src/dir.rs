//! A folder opened once, and every change below it made relative to that handle without
//! following a symbolic link (see `Dir`).
