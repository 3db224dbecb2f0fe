using System.Buffers.Binary;
using System.IO.Compression;
using MLNet.Align.Demo.Data;
using SkiaSharp;

namespace MLNet.Align.Tests.Datasets;

public class IdxReaderTests
{
    internal static string Fixture(string name) => FixtureFeatures.Labelled(name);
    internal static string FashionImages => Fixture("fashion-mnist-t10k-300-images-idx3-ubyte");
    internal static string FashionLabels => Fixture("fashion-mnist-t10k-300-labels-idx1-ubyte");
    internal static string MnistImages => Fixture("mnist-t10k-300-images-idx3-ubyte");
    internal static string MnistLabels => Fixture("mnist-t10k-300-labels-idx1-ubyte");

    [Fact]
    public void ReadsFashionMnistFixture_CountsShapeLabelsAndPixelsMatchFileBytes()
    {
        byte[] imageBytes = File.ReadAllBytes(FashionImages);
        byte[] labelBytes = File.ReadAllBytes(FashionLabels);
        var set = IdxReader.ReadLabelled(FashionImages, FashionLabels, IdxReader.FashionMnistClassNames);

        Assert.Equal(300, set.Count);
        Assert.Equal(300, set.Images.Count);
        Assert.Equal(28, set.Images.Rows);
        Assert.Equal(28, set.Images.Columns);
        Assert.Equal(labelBytes.AsSpan(8).ToArray(), set.Labels);
        // The Fashion-MNIST test set famously starts with an ankle boot.
        Assert.Equal(9, set.Labels[0]);
        Assert.Equal("Ankle boot", set.ClassNames[set.Labels[0]]);
        Assert.Equal(imageBytes.AsSpan(16).ToArray(), set.Images.Pixels);
        Assert.Equal(imageBytes.AsSpan(16 + 299 * 784, 784).ToArray(), set.Images.Image(299).ToArray());
        Assert.Contains(set.Images.Pixels, b => b > 200); // real ink, not an empty buffer
    }

    [Fact]
    public void ReadsMnistFixture_FirstLabelIsSeven()
    {
        byte[] labelBytes = File.ReadAllBytes(MnistLabels);
        var set = IdxReader.ReadLabelled(MnistImages, MnistLabels, IdxReader.MnistDigitWords);
        Assert.Equal(300, set.Count);
        Assert.Equal(labelBytes[8], set.Labels[0]);
        Assert.Equal(7, set.Labels[0]);
        Assert.Equal("seven", IdxReader.MnistDigitWords[7]);
        Assert.Equal("7", IdxReader.MnistDigitNumerals[7]);
        Assert.Equal(10, set.Labels.Distinct().Count());
    }

    [Fact]
    public void ToBitmap_IsGray8WithTheStoredPixels()
    {
        byte[] imageBytes = File.ReadAllBytes(MnistImages);
        var images = IdxReader.ReadImages(MnistImages);
        using var bitmap = images.ToBitmap(3);
        Assert.Equal(SKColorType.Gray8, bitmap.ColorType);
        Assert.Equal(28, bitmap.Width);
        Assert.Equal(28, bitmap.Height);
        int checkedInk = 0;
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++)
            {
                byte expected = imageBytes[16 + 3 * 784 + y * 28 + x];
                Assert.Equal(expected, bitmap.GetPixel(x, y).Red);
                if (expected > 128) checkedInk++;
            }
        Assert.True(checkedInk > 20, $"digit 3 of the fixture should have ink pixels, found {checkedInk}");
    }

    [Fact]
    public void ReadsGzipAndRawIdentically_AndHonoursMaxCount()
    {
        string dir = Directory.CreateTempSubdirectory("idx-gz").FullName;
        try
        {
            string gz = Path.Combine(dir, "images.gz");
            using (var input = File.OpenRead(FashionImages))
            using (var output = new GZipStream(File.Create(gz), CompressionLevel.Fastest))
                input.CopyTo(output);
            var raw = IdxReader.ReadImages(FashionImages);
            var zipped = IdxReader.ReadImages(gz);
            Assert.Equal(raw.Pixels, zipped.Pixels);
            var first10 = IdxReader.ReadImages(gz, maxCount: 10);
            Assert.Equal(10, first10.Count);
            Assert.Equal(raw.Pixels.AsSpan(0, 10 * 784).ToArray(), first10.Pixels);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void BadMagic_ThrowsNamingFileExpectedAndFound()
    {
        string dir = Directory.CreateTempSubdirectory("idx-bad").FullName;
        try
        {
            // A label file given as images: the magic is 2049, not 2051.
            var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadImages(FashionLabels));
            Assert.Contains(FashionLabels, e.Message);
            Assert.Contains("2051", e.Message);
            Assert.Contains("2049", e.Message);

            string bad = Path.Combine(dir, "bad-labels");
            var bytes = File.ReadAllBytes(MnistLabels);
            BinaryPrimitives.WriteInt32BigEndian(bytes, 1234);
            File.WriteAllBytes(bad, bytes);
            var e2 = Assert.Throws<InvalidDataException>(() => IdxReader.ReadLabels(bad));
            Assert.Contains(bad, e2.Message);
            Assert.Contains("1234", e2.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void TruncatedFiles_ThrowNamingFileAndSizes()
    {
        string dir = Directory.CreateTempSubdirectory("idx-trunc").FullName;
        try
        {
            string images = Path.Combine(dir, "truncated-images");
            File.WriteAllBytes(images, File.ReadAllBytes(MnistImages).AsSpan(0, 16 + 784 * 5 + 100).ToArray());
            var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadImages(images));
            Assert.Contains(images, e.Message);
            Assert.Contains((300 * 784).ToString(), e.Message);
            Assert.Contains((784 * 5 + 100).ToString(), e.Message);
            // The first 5 images are intact and readable on their own.
            Assert.Equal(5, IdxReader.ReadImages(images, maxCount: 5).Count);

            string header = Path.Combine(dir, "short-header");
            File.WriteAllBytes(header, [0, 0, 8, 1]);
            var e2 = Assert.Throws<InvalidDataException>(() => IdxReader.ReadLabels(header));
            Assert.Contains(header, e2.Message);

            string labels = Path.Combine(dir, "labels");
            File.WriteAllBytes(labels, File.ReadAllBytes(MnistLabels).AsSpan(0, 8 + 200).ToArray());
            var e3 = Assert.Throws<InvalidDataException>(() => IdxReader.ReadLabelled(MnistImages, labels, IdxReader.MnistDigitWords));
            Assert.Contains(labels, e3.Message);

            Assert.Throws<FileNotFoundException>(() => IdxReader.ReadImages(Path.Combine(dir, "absent")));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void LabelOutOfRange_IsRejected()
    {
        var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadLabelled(MnistImages, MnistLabels, ["zero", "one", "two"]));
        Assert.Contains(MnistLabels, e.Message);
        Assert.Contains("label 7 at item 0", e.Message);
    }
}
