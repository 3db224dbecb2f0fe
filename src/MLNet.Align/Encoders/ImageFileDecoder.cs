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
    /// <summary>
    /// Default pixel budget: 100 megapixels, i.e. a 400 MB decoded RGBA bitmap (the EXIF turn briefly doubles it).
    /// Above every phone and full-frame camera (at most ~61 MP) and 8K video frames (33 MP), so only a gigapixel scan
    /// or a hostile header (a 254-byte PNG declaring 60000 x 60000 would ask for 14.4 GB) is refused; raise it per call
    /// (or <c>--max-image-pixels</c>) for such scans.
    /// </summary>
    public const long DefaultMaxPixels = 100_000_000;

    /// <summary>Decodes <paramref name="path"/> into an upright 32-bit bitmap (caller disposes). Only a regular file is
    /// opened (a named pipe would block, a device never ends), and the size the header declares is checked against
    /// <paramref name="maxPixels"/> before any pixel is decoded.</summary>
    /// <param name="path">The image file.</param>
    /// <param name="maxPixels">Pixel budget (width x height as declared by the header); default <see cref="DefaultMaxPixels"/>.</param>
    /// <exception cref="FileNotFoundException">The file does not exist (or the path is empty).</exception>
    /// <exception cref="InvalidDataException">The path is a folder, pipe or device, the file is not a supported image,
    /// declares more pixels than the budget, or is truncated or corrupt (the message names the file and Skia's result code).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxPixels"/> is not positive.</exception>
    public static SKBitmap Decode(string path, long maxPixels = DefaultMaxPixels)
    {
        if (maxPixels <= 0) throw new ArgumentOutOfRangeException(nameof(maxPixels), maxPixels, "The pixel budget must be positive.");
        if (string.IsNullOrEmpty(path)) throw new FileNotFoundException("Image path is empty.", path ?? "");
        RequireImageFile(path);
        using var stream = File.OpenRead(path);
        using var codec = SKCodec.Create(stream, out var created);
        if (codec is null)
            throw new InvalidDataException($"Cannot decode image '{path}': not a supported image format or corrupt ({created}).");
        RequireWithinBudget(path, codec.Info.Width, codec.Info.Height, maxPixels);
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
        RequireImageFile(path);
        using var stream = File.OpenRead(path);
        using var codec = SKCodec.Create(stream);
        return codec?.EncodedOrigin ?? SKEncodedOrigin.TopLeft;
    }

    /// <summary>Checks an image file without decoding its pixels: a regular file, a header SkiaSharp recognises, and a
    /// declared size within <paramref name="maxPixels"/>. Cheap (reads the header only).</summary>
    /// <returns>The declared width and height.</returns>
    /// <exception cref="FileNotFoundException">Nothing there.</exception>
    /// <exception cref="InvalidDataException">Not a regular file, not an image, or over the pixel budget (the message names the file).</exception>
    public static (int Width, int Height) CheckImageFile(string path, long maxPixels = DefaultMaxPixels)
    {
        if (maxPixels <= 0) throw new ArgumentOutOfRangeException(nameof(maxPixels), maxPixels, "The pixel budget must be positive.");
        if (string.IsNullOrEmpty(path)) throw new FileNotFoundException("Image path is empty.", path ?? "");
        RequireImageFile(path);
        using var stream = File.OpenRead(path);
        using var codec = SKCodec.Create(stream, out SKCodecResult created);
        if (codec is null)
            throw new InvalidDataException($"Cannot decode image '{path}': not a supported image format or corrupt ({created}).");
        RequireWithinBudget(path, codec.Info.Width, codec.Info.Height, maxPixels);
        return (codec.Info.Width, codec.Info.Height);
    }

    private static void RequireWithinBudget(string path, int width, int height, long maxPixels)
    {
        long pixels = (long)width * height;
        if (pixels > maxPixels)
        {
            var ci = System.Globalization.CultureInfo.InvariantCulture;
            throw new InvalidDataException($"Image '{path}' declares {width} x {height} pixels ({(pixels / 1e6).ToString("0.#", ci)} megapixels), over the " +
                $"pixel budget of {(maxPixels / 1e6).ToString("0.#", ci)} megapixels; it was not decoded (raise the budget, " +
                "OnnxImageEncoderOptions.MaxImagePixels or --max-image-pixels, to read it).");
        }
    }

    /// <summary>Throws unless <paramref name="path"/> is a regular file (checked without opening it: see <see cref="InputFiles"/>).</summary>
    /// <exception cref="FileNotFoundException">Nothing there.</exception>
    /// <exception cref="InvalidDataException">A folder, named pipe, device or socket.</exception>
    public static void RequireImageFile(string path)
    {
        var kind = InputFiles.KindOf(path);
        if (kind == FileKind.Regular) return;
        if (kind == FileKind.Missing) throw new FileNotFoundException($"Image file not found: '{path}'.", path);
        if (kind == FileKind.Directory) throw new InvalidDataException($"Image path '{path}' is a folder, not an image file.");
        throw new InvalidDataException($"Image path '{path}' is {InputFiles.Describe(kind)}, not an image file; only regular files are read as images.");
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
