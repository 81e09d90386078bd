//! QR codes of short URLs, as PNG (1-bit grayscale, encoded with the `png` crate from the
//! modules `qrcode` computes) or SVG (rendered by `qrcode`).

use qrcode::{Color, QrCode};

/// Smallest accepted image size in pixels.
pub const MIN_SIZE: u32 = 64;
/// Largest accepted image size in pixels.
pub const MAX_SIZE: u32 = 2048;
/// Image size when none is given.
pub const DEFAULT_SIZE: u32 = 256;
/// Light modules around the code, as the QR specification asks.
const QUIET_ZONE: usize = 4;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrFormat {
    /// `image/png`.
    Png,
    /// `image/svg+xml`.
    Svg,
}

impl QrFormat {
    /// Parses `png` or `svg` (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "png" => Some(QrFormat::Png),
            "svg" => Some(QrFormat::Svg),
            _ => None,
        }
    }

    /// The media type.
    pub fn content_type(self) -> &'static str {
        match self {
            QrFormat::Png => "image/png",
            QrFormat::Svg => "image/svg+xml",
        }
    }
}

/// Why a QR code could not be made.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    /// The data does not fit in a QR code.
    #[error("the short URL cannot be encoded as a QR code: {0}")]
    Encode(String),
    /// PNG encoding failed.
    #[error("png encoding failed: {0}")]
    Png(String),
}

/// Renders `data` as a QR code about `size` pixels wide.
pub fn render(data: &str, format: QrFormat, size: u32) -> Result<Vec<u8>, QrError> {
    let code = QrCode::new(data.as_bytes()).map_err(|e| QrError::Encode(e.to_string()))?;
    match format {
        QrFormat::Svg => Ok(code
            .render::<qrcode::render::svg::Color<'_>>()
            .quiet_zone(true)
            .min_dimensions(size, size)
            .max_dimensions(size.max(MIN_SIZE), size.max(MIN_SIZE))
            .build()
            .into_bytes()),
        QrFormat::Png => png_of(&code, size),
    }
}

/// 1-bit grayscale PNG: each module a `scale x scale` square, `scale` the largest whole
/// number that fits `size` (at least 1).
fn png_of(code: &QrCode, size: u32) -> Result<Vec<u8>, QrError> {
    let modules = code.width();
    let colors = code.to_colors();
    let total = modules + 2 * QUIET_ZONE;
    let scale = (usize::try_from(size).unwrap_or(usize::MAX) / total).max(1);
    let pixels = total * scale;
    let row_bytes = pixels.div_ceil(8);
    let mut data = vec![0xffu8; row_bytes * pixels];
    for y in 0..modules {
        for x in 0..modules {
            if colors[y * modules + x] != Color::Dark {
                continue;
            }
            for py in (y + QUIET_ZONE) * scale..(y + QUIET_ZONE + 1) * scale {
                for px in (x + QUIET_ZONE) * scale..(x + QUIET_ZONE + 1) * scale {
                    data[py * row_bytes + px / 8] &= !(0x80 >> (px % 8));
                }
            }
        }
    }
    let side = u32::try_from(pixels).map_err(|_| QrError::Png("image too large".into()))?;
    let mut out = Vec::with_capacity(data.len() / 4 + 128);
    {
        let mut encoder = png::Encoder::new(&mut out, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        let mut writer = encoder
            .write_header()
            .map_err(|e| QrError::Png(e.to_string()))?;
        writer
            .write_image_data(&data)
            .map_err(|e| QrError::Png(e.to_string()))?;
        writer.finish().map_err(|e| QrError::Png(e.to_string()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_and_svg() {
        let png = render("https://sho.rt/abcdefg", QrFormat::Png, 256).expect("png");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let reader = decoder.read_info().expect("decodes");
        let info = reader.info();
        assert!(info.width <= 256 && info.width >= 128, "{}", info.width);
        let svg = render("https://sho.rt/abcdefg", QrFormat::Svg, 256).expect("svg");
        let svg = String::from_utf8(svg).expect("utf-8");
        assert!(svg.contains("<svg"), "{svg}");
    }

    #[test]
    fn formats() {
        assert_eq!(QrFormat::parse("PNG"), Some(QrFormat::Png));
        assert_eq!(QrFormat::parse("gif"), None);
    }
}
