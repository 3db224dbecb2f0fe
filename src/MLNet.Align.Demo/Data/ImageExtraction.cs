using SkiaSharp;

namespace MLNet.Align.Demo.Data;

/// <summary>Decoding, downscaling and re-encoding of the images that sources extract into the data folder (GCompris
/// WebP -> PNG, wallpapers -> JPEG), with SkiaSharp (the decoder ML.NET's image loading uses too).</summary>
public static class ImageExtraction
{
    /// <summary>Decodes every pixel to RGBA; null when the data does not decode or is incomplete (a truncated file
    /// is a failure here, never a partial image).</summary>
    public static SKBitmap? DecodeFully(byte[] encoded)
    {
        ArgumentNullException.ThrowIfNull(encoded);
        using var data = SKData.CreateCopy(encoded);
        using var codec = SKCodec.Create(data);
        if (codec is null || codec.Info.Width <= 0 || codec.Info.Height <= 0) return null;
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Premul);
        var bitmap = new SKBitmap(info);
        var result = codec.GetPixels(info, bitmap.GetPixels());
        if (result == SKCodecResult.Success) return bitmap;
        bitmap.Dispose();
        return null;
    }

    /// <summary>A copy scaled so that its longest side is at most <paramref name="maxSide"/> pixels (never enlarged;
    /// high-quality filter), or null when it is already small enough.</summary>
    public static SKBitmap? Shrink(SKBitmap bitmap, int maxSide)
    {
        ArgumentNullException.ThrowIfNull(bitmap);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSide, 1);
        double scale = (double)maxSide / Math.Max(bitmap.Width, bitmap.Height);
        if (scale >= 1) return null;
        int w = Math.Max(1, (int)Math.Round(bitmap.Width * scale)), h = Math.Max(1, (int)Math.Round(bitmap.Height * scale));
        return bitmap.Resize(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Premul), SKFilterQuality.High);
    }

    /// <summary>PNG bytes of a bitmap (alpha kept), its longest side shrunk to <paramref name="maxSide"/>.</summary>
    public static byte[] EncodePng(SKBitmap bitmap, int maxSide)
    {
        using var small = Shrink(bitmap, maxSide);
        using var image = SKImage.FromBitmap(small ?? bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>JPEG bytes (quality 90) of a bitmap flattened onto white, its longest side shrunk to
    /// <paramref name="maxSide"/>.</summary>
    public static byte[] EncodeJpeg(SKBitmap bitmap, int maxSide)
    {
        using var small = Shrink(bitmap, maxSide);
        var src = small ?? bitmap;
        using var opaque = new SKBitmap(new SKImageInfo(src.Width, src.Height, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(opaque)) { canvas.Clear(SKColors.White); canvas.DrawBitmap(src, 0, 0); }
        using var image = SKImage.FromBitmap(opaque);
        using var data = image.Encode(SKEncodedImageFormat.Jpeg, 90);
        return data.ToArray();
    }
}
