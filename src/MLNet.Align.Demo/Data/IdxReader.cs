using System.Buffers.Binary;
using System.IO.Compression;
using SkiaSharp;

namespace MLNet.Align.Demo.Data;

/// <summary>Images of an idx3 file (MNIST format): <see cref="Count"/> grey images of <see cref="Rows"/> x
/// <see cref="Columns"/> bytes, row-major, 0 = background, 255 = ink (as stored: MNIST/Fashion-MNIST are white on
/// black).</summary>
public sealed class IdxImages
{
    /// <summary>Creates the set; <paramref name="pixels"/> must hold count * rows * columns bytes.</summary>
    /// <exception cref="ArgumentException">The pixel buffer length does not match the shape.</exception>
    public IdxImages(byte[] pixels, int count, int rows, int columns, string source)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        if ((long)count * rows * columns != pixels.Length)
            throw new ArgumentException($"{source}: {pixels.Length} pixel bytes, expected {count} x {rows} x {columns} = {(long)count * rows * columns}.", nameof(pixels));
        Pixels = pixels; Count = count; Rows = rows; Columns = columns; Source = source;
    }

    /// <summary>All pixels, [Count, Rows, Columns] row-major, values 0..255.</summary>
    public byte[] Pixels { get; }
    /// <summary>Number of images.</summary>
    public int Count { get; }
    /// <summary>Image height in pixels.</summary>
    public int Rows { get; }
    /// <summary>Image width in pixels.</summary>
    public int Columns { get; }
    /// <summary>The file the images came from (for messages).</summary>
    public string Source { get; }

    /// <summary>The raw bytes of image <paramref name="index"/>: [Rows, Columns].</summary>
    public ReadOnlySpan<byte> Image(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        int size = Rows * Columns;
        return Pixels.AsSpan(index * size, size);
    }

    /// <summary>Image <paramref name="index"/> as an 8-bit grey <see cref="SKBitmap"/> (<see cref="SKColorType.Gray8"/>,
    /// pixel values as stored). The caller disposes it.</summary>
    public SKBitmap ToBitmap(int index)
    {
        var pixels = Image(index);
        var bitmap = new SKBitmap(new SKImageInfo(Columns, Rows, SKColorType.Gray8, SKAlphaType.Opaque));
        Span<byte> span;
        unsafe { span = new Span<byte>((void*)bitmap.GetPixels(), bitmap.RowBytes * Rows); }
        int stride = bitmap.RowBytes;
        for (int y = 0; y < Rows; y++)
            pixels.Slice(y * Columns, Columns).CopyTo(span.Slice(y * stride, Columns));
        return bitmap;
    }
}

/// <summary>A labelled idx set: images, their labels (0..ClassNames.Count-1) and the class names in label order.</summary>
/// <param name="Images">The images.</param>
/// <param name="Labels">One label per image.</param>
/// <param name="ClassNames">Class name of each label value.</param>
public sealed record LabelledIdxSet(IdxImages Images, byte[] Labels, IReadOnlyList<string> ClassNames)
{
    /// <summary>Number of items.</summary>
    public int Count => Labels.Length;
}

/// <summary>Reads the idx format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/): big-endian magic
/// 0x00000803 (2051) + count + rows + columns for images, 0x00000801 (2049) + count for labels, then unsigned bytes.
/// Files may be raw or gzip-compressed (detected from the gzip magic bytes 1F 8B, not from the name).</summary>
public static class IdxReader
{
    /// <summary>Magic number of an idx3 unsigned-byte image file.</summary>
    public const int ImagesMagic = 2051;
    /// <summary>Magic number of an idx1 unsigned-byte label file.</summary>
    public const int LabelsMagic = 2049;

    /// <summary>Fashion-MNIST class names in label order 0..9 (Xiao et al. 2017, the dataset's README).</summary>
    public static IReadOnlyList<string> FashionMnistClassNames { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>MNIST class names as English words, label order 0..9 ("zero".."nine"). The words are the default for
    /// prompts to a sentence encoder: they are ordinary vocabulary, where a lone numeral is a rarer token in
    /// sentence-similarity training text (CLIP_benchmark uses the numerals with 'a photo of the number: "{c}".').</summary>
    public static IReadOnlyList<string> MnistDigitWords { get; } =
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];

    /// <summary>MNIST class names as numerals "0".."9", label order.</summary>
    public static IReadOnlyList<string> MnistDigitNumerals { get; } =
        ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

    /// <summary>Reads an idx3 image file (raw or gzip).</summary>
    /// <param name="path">The file.</param>
    /// <param name="maxCount">Read only the first <paramref name="maxCount"/> images (null: all).</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">Wrong magic number, or the file is shorter than its header says (the
    /// message names the file, expected and actual sizes).</exception>
    public static IdxImages ReadImages(string path, int? maxCount = null)
    {
        using var stream = Open(path);
        Span<byte> header = stackalloc byte[16];
        ReadExactly(stream, header, path, "the 16-byte idx3 header");
        int magic = BinaryPrimitives.ReadInt32BigEndian(header);
        if (magic != ImagesMagic)
            throw new InvalidDataException($"{path}: idx3 image magic number expected {ImagesMagic} (0x{ImagesMagic:X8}), found {magic} (0x{magic:X8}).");
        int count = BinaryPrimitives.ReadInt32BigEndian(header[4..]);
        int rows = BinaryPrimitives.ReadInt32BigEndian(header[8..]);
        int columns = BinaryPrimitives.ReadInt32BigEndian(header[12..]);
        if (count < 0 || rows <= 0 || columns <= 0 || (long)rows * columns > 1 << 24)
            throw new InvalidDataException($"{path}: implausible idx3 shape count={count}, rows={rows}, columns={columns}.");
        int take = maxCount is { } m ? Math.Min(Math.Max(m, 0), count) : count;
        long bytes = (long)take * rows * columns;
        if (bytes > Array.MaxLength)
            throw new InvalidDataException($"{path}: {take} images of {rows}x{columns} do not fit one array.");
        var pixels = new byte[bytes];
        int read = ReadNamed(stream, pixels, path);
        if (read < pixels.Length)
            throw new InvalidDataException($"{path}: truncated idx3 file: header says {count} images of {rows}x{columns}, expected {bytes} pixel bytes for {take} images, found {read}.");
        return new IdxImages(pixels, take, rows, columns, path);
    }

    /// <summary>Reads an idx1 label file (raw or gzip).</summary>
    /// <param name="path">The file.</param>
    /// <param name="maxCount">Read only the first <paramref name="maxCount"/> labels (null: all).</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">Wrong magic number or truncated file (the message names the file).</exception>
    public static byte[] ReadLabels(string path, int? maxCount = null)
    {
        using var stream = Open(path);
        Span<byte> header = stackalloc byte[8];
        ReadExactly(stream, header, path, "the 8-byte idx1 header");
        int magic = BinaryPrimitives.ReadInt32BigEndian(header);
        if (magic != LabelsMagic)
            throw new InvalidDataException($"{path}: idx1 label magic number expected {LabelsMagic} (0x{LabelsMagic:X8}), found {magic} (0x{magic:X8}).");
        int count = BinaryPrimitives.ReadInt32BigEndian(header[4..]);
        if (count < 0)
            throw new InvalidDataException($"{path}: negative idx1 count {count}.");
        int take = maxCount is { } m ? Math.Min(Math.Max(m, 0), count) : count;
        var labels = new byte[take];
        int read = ReadNamed(stream, labels, path);
        if (read < labels.Length)
            throw new InvalidDataException($"{path}: truncated idx1 file: header says {count} labels, expected {take} label bytes, found {read}.");
        return labels;
    }

    /// <summary>Reads an image file and its label file and checks that they agree.</summary>
    /// <param name="imagesPath">idx3 images.</param>
    /// <param name="labelsPath">idx1 labels.</param>
    /// <param name="classNames">Class names in label order; every label must be below their count.</param>
    /// <param name="maxCount">First N items only (null: all).</param>
    /// <exception cref="InvalidDataException">The counts differ, a label is out of range, or a file is malformed.</exception>
    public static LabelledIdxSet ReadLabelled(string imagesPath, string labelsPath, IReadOnlyList<string> classNames, int? maxCount = null)
    {
        ArgumentNullException.ThrowIfNull(classNames);
        var images = ReadImages(imagesPath, maxCount);
        var labels = ReadLabels(labelsPath, maxCount);
        if (images.Count != labels.Length)
            throw new InvalidDataException($"{labelsPath}: {labels.Length} labels, expected {images.Count} (the image count of {imagesPath}).");
        for (int i = 0; i < labels.Length; i++)
            if (labels[i] >= classNames.Count)
                throw new InvalidDataException($"{labelsPath}: label {labels[i]} at item {i} is out of range, expected 0..{classNames.Count - 1}.");
        return new LabelledIdxSet(images, labels, classNames);
    }

    /// <summary>Opens a raw or gzip idx file.</summary>
    private static Stream Open(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"idx file not found: {path}", path);
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        int b0 = file.ReadByte(), b1 = file.ReadByte();
        file.Position = 0;
        if (b0 == 0x1F && b1 == 0x8B)
            return new BufferedStream(new GZipStream(file, CompressionMode.Decompress), 1 << 16);
        return file;
    }

    // A damaged gzip stream throws from inside GZipStream without the file name: add it.
    private static int ReadNamed(Stream stream, Span<byte> buffer, string path)
    {
        try { return stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: damaged gzip data: {e.Message}", e); }
    }

    private static void ReadExactly(Stream stream, Span<byte> buffer, string path, string what)
    {
        int read = ReadNamed(stream, buffer, path);
        if (read < buffer.Length)
            throw new InvalidDataException($"{path}: truncated: expected {what}, found only {read} bytes.");
    }
}
