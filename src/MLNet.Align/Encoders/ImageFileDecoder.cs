using SkiaSharp;

namespace MLNet.Align.Encoders;

/// <summary>
/// Strict image decoding for the embedding path and <c>predict</c>: SkiaSharp's <see cref="SKCodec"/> result codes are
/// checked (a truncated PNG/JPEG decodes "successfully" with <see cref="SKBitmap.Decode(Stream)"/>, its missing rows
/// left grey or black; here <see cref="SKCodecResult.IncompleteInput"/> and <see cref="SKCodecResult.ErrorInInput"/>
/// are errors), and the EXIF orientation (<see cref="SKCodec.EncodedOrigin"/>) is applied, so a phone photo tagged
/// "rotate 90" is encoded upright. ML.NET's <c>LoadImages</c> (used inside a classifier zip) applies neither.
/// </summary>
public static class ImageFileDecoder
{
    /// <summary>Decodes <paramref name="path"/> into an upright 32-bit bitmap (caller disposes).</summary>
    /// <exception cref="FileNotFoundException">The file does not exist (or the path is empty).</exception>
    /// <exception cref="InvalidDataException">The path is a folder, the file is not a supported image, or it is truncated or
    /// corrupt (the message names the file and Skia's result code).</exception>
    public static SKBitmap Decode(string path)
    {
        if (string.IsNullOrEmpty(path)) throw new FileNotFoundException("Image path is empty.", path ?? "");
        if (Directory.Exists(path)) throw new InvalidDataException($"Image path '{path}' is a folder, not an image file.");
        if (!File.Exists(path)) throw new FileNotFoundException($"Image file not found: '{path}'.", path);
        using var stream = File.OpenRead(path);
        using var codec = SKCodec.Create(stream, out var created);
        if (codec is null)
            throw new InvalidDataException($"Cannot decode image '{path}': not a supported image format or corrupt ({created}).");
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Premul);
        var bitmap = new SKBitmap(info);
        try
        {
            var result = codec.GetPixels(info, bitmap.GetPixels());
            if (result is not (SKCodecResult.Success))
                throw new InvalidDataException(result == SKCodecResult.IncompleteInput
                    ? $"Image '{path}' is truncated: the decoder ran out of data ({result}); re-download or re-export it."
                    : $"Cannot decode image '{path}': {result}.");
            var upright = Orient(bitmap, codec.EncodedOrigin);
            if (!ReferenceEquals(upright, bitmap)) bitmap.Dispose();
            return upright;
        }
        catch
        {
            bitmap.Dispose();
            throw;
        }
    }

    /// <summary>The EXIF orientation of an image file (<see cref="SKEncodedOrigin.TopLeft"/> when untagged or not decodable).</summary>
    public static SKEncodedOrigin Orientation(string path)
    {
        using var stream = File.OpenRead(path);
        using var codec = SKCodec.Create(stream);
        return codec?.EncodedOrigin ?? SKEncodedOrigin.TopLeft;
    }

    /// <summary>Returns <paramref name="source"/> (32-bit pixels) turned upright for its EXIF origin (the same
    /// instance for TopLeft). Pixel maps after EXIF 2.3's orientation values 1-8, W x H = stored size.</summary>
    public static unsafe SKBitmap Orient(SKBitmap source, SKEncodedOrigin origin)
    {
        if (origin == SKEncodedOrigin.TopLeft) return source;
        if (source.BytesPerPixel != 4) throw new ArgumentException("Orient needs a 32-bit bitmap.", nameof(source));
        int W = source.Width, H = source.Height;
        bool swap = origin is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;
        int w = swap ? H : W, h = swap ? W : H;
        var result = new SKBitmap(new SKImageInfo(w, h, source.ColorType, source.AlphaType));
        // A pointer rather than GetPixelSpan(), whose return type changed in SkiaSharp 3.x (as OnnxImageEncoder does).
        var src = new ReadOnlySpan<int>((void*)source.GetPixels(), source.RowBytes / 4 * H);
        int dstStride0 = result.RowBytes / 4;
        var dst = new int[dstStride0 * h];
        int srcStride = source.RowBytes / 4, dstStride = result.RowBytes / 4;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                var (sx, sy) = origin switch
                {
                    SKEncodedOrigin.TopRight => (W - 1 - x, y),              // 2: mirrored horizontally
                    SKEncodedOrigin.BottomRight => (W - 1 - x, H - 1 - y),   // 3: rotated 180
                    SKEncodedOrigin.BottomLeft => (x, H - 1 - y),            // 4: mirrored vertically
                    SKEncodedOrigin.LeftTop => (y, x),                       // 5: transposed
                    SKEncodedOrigin.RightTop => (y, H - 1 - x),              // 6: shown rotated 90 clockwise
                    SKEncodedOrigin.RightBottom => (W - 1 - y, H - 1 - x),   // 7: transverse
                    SKEncodedOrigin.LeftBottom => (W - 1 - y, x),            // 8: shown rotated 90 counter-clockwise
                    _ => (x, y),
                };
                dst[y * dstStride + x] = src[sy * srcStride + sx];
            }
        System.Runtime.InteropServices.Marshal.Copy(dst, 0, result.GetPixels(), dst.Length);
        result.NotifyPixelsChanged();
        return result;
    }
}
