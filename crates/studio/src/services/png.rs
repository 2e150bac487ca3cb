//! Charts saved as PNG: a region of the next rendered frame, written from the screenshot
//! callback.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, channel};

/// A chart that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct PngError {
    /// The file it was written to.
    pub path: PathBuf,
    /// Why writing failed.
    pub source: std::io::Error,
}

/// Writes an RGBA image as PNG.
pub fn write_png(path: &Path, image: &egui::ColorImage) -> std::io::Result<()> {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut encoder = png::Encoder::new(file, image.size[0] as u32, image.size[1] as u32);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
    let bytes: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_array()).collect();
    writer
        .write_image_data(&bytes)
        .map_err(std::io::Error::other)
}

/// Asks for a screenshot and writes the `rect` part of it (in points) to `path`. The receiver
/// gets the outcome once the integration has rendered the frame.
pub fn export_region(
    ctx: &egui::Context,
    rect: egui::Rect,
    path: PathBuf,
) -> Receiver<Result<(), PngError>> {
    let pixels_per_point = ctx.pixels_per_point();
    let (tx, rx) = channel();
    ctx.request_screenshot(move |image| {
        let region = image.region(&rect, Some(pixels_per_point));
        let result = write_png(&path, &region).map_err(|source| PngError {
            path: path.clone(),
            source,
        });
        // The receiver is gone only when the studio has closed.
        let _ = tx.send(result);
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_written_as_png() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.png");
        let mut image = egui::ColorImage::filled([3, 2], egui::Color32::from_rgb(10, 20, 30));
        image.pixels[4] = egui::Color32::WHITE;
        write_png(&path, &image).unwrap();
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (3, 2));
        assert_eq!(&buf[..4], &[10, 20, 30, 255]);
        assert_eq!(&buf[16..20], &[255, 255, 255, 255], "pixel (1, 1)");
    }
}
