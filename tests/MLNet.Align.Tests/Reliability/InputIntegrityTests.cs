using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Projection;
using MLNet.Align.Tests.ZeroShot;
using SkiaSharp;
using Xunit.Abstractions;

namespace MLNet.Align.Tests.Reliability;

/// <summary>Silent-garbage checks of issue 10 on files derived from a real fixture image and the real pairs file:
/// truncated PNG/JPEG detection, EXIF orientation, strict UTF-8, and a full disk during checkpoint writes.</summary>
[Collection("torch-projection")]
public class InputIntegrityTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("integrity-").FullName;
    private string P(string name) => Path.Combine(_dir, name);
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] Jpeg(SKBitmap b) { using var d = b.Encode(SKEncodedImageFormat.Jpeg, 95); return d.ToArray(); }

    [Fact]
    public void Truncated_png_and_jpeg_are_refused_where_SKBitmap_Decode_accepted_them()
    {
        var png = File.ReadAllBytes(BadInputFixture.SourceImage);
        File.WriteAllBytes(P("t.png"), png[..(png.Length * 6 / 10)]);
        using (var b = SKBitmap.Decode(BadInputFixture.SourceImage)) { var j = Jpeg(b); File.WriteAllBytes(P("t.jpg"), j[..(j.Length / 2)]); }
        foreach (var name in new[] { "t.png", "t.jpg" })
        {
            // The old decoding path: a bitmap comes back, its missing rows filled in (silent garbage).
            using (var old = SKBitmap.Decode(P(name))) Assert.NotNull(old);
            var e = Assert.Throws<InvalidDataException>(() => ImageFileDecoder.Decode(P(name)));
            Assert.Contains("is truncated", e.Message);
            Assert.Contains(name, e.Message);
            Assert.Contains("IncompleteInput", e.Message);
        }
        // The intact original still decodes to the same pixels as before.
        using var strict = ImageFileDecoder.Decode(BadInputFixture.SourceImage);
        using var plain = SKBitmap.Decode(BadInputFixture.SourceImage);
        Assert.Equal((plain.Width, plain.Height), (strict.Width, strict.Height));
        Assert.Equal(plain.GetPixel(plain.Width / 2, plain.Height / 2), strict.GetPixel(strict.Width / 2, strict.Height / 2));
    }

    [Fact]
    public void Orient_undoes_every_stored_rotation_exactly()
    {
        using var src = new SKBitmap(new SKImageInfo(3, 2, SKColorType.Rgba8888, SKAlphaType.Premul));
        for (int y = 0; y < 2; y++) for (int x = 0; x < 3; x++) src.SetPixel(x, y, new SKColor((byte)(40 * x), (byte)(100 * y), 7));
        using var ccw = BadInputFixture.RotateCounterClockwise(src);                 // stored sideways, EXIF 6
        using var up6 = ImageFileDecoder.Orient(ccw, SKEncodedOrigin.RightTop);
        using var cw = ImageFileDecoder.Orient(src, SKEncodedOrigin.RightTop);       // rotated clockwise
        using var up8 = ImageFileDecoder.Orient(cw, SKEncodedOrigin.LeftBottom);     // EXIF 8 undoes it
        using var r180 = ImageFileDecoder.Orient(src, SKEncodedOrigin.BottomRight);
        using var up3 = ImageFileDecoder.Orient(r180, SKEncodedOrigin.BottomRight);
        using var m = ImageFileDecoder.Orient(src, SKEncodedOrigin.TopRight);
        using var up2 = ImageFileDecoder.Orient(m, SKEncodedOrigin.TopRight);
        using var t = ImageFileDecoder.Orient(src, SKEncodedOrigin.LeftTop);
        using var up5 = ImageFileDecoder.Orient(t, SKEncodedOrigin.LeftTop);
        foreach (var up in new[] { up6, up8, up3, up2, up5 })
        {
            Assert.Equal((3, 2), (up.Width, up.Height));
            for (int y = 0; y < 2; y++) for (int x = 0; x < 3; x++) Assert.Equal(src.GetPixel(x, y), up.GetPixel(x, y));
        }
    }

    [Fact]
    public void Exif_rotated_photo_is_embedded_upright()
    {
        using (var b = SKBitmap.Decode(BadInputFixture.SourceImage))
        using (var stored = BadInputFixture.RotateCounterClockwise(b))
        {
            File.WriteAllBytes(P("upright.jpg"), Jpeg(b));
            File.WriteAllBytes(P("exif6.jpg"), BadInputFixture.WithExifOrientation(Jpeg(stored), 6));
            File.WriteAllBytes(P("sideways.jpg"), Jpeg(stored));
        }
        Assert.Equal(SKEncodedOrigin.RightTop, ImageFileDecoder.Orientation(P("exif6.jpg")));
        using (var up = ImageFileDecoder.Decode(P("exif6.jpg")))
        using (var orig = ImageFileDecoder.Decode(P("upright.jpg")))
            Assert.Equal((orig.Width, orig.Height), (up.Width, up.Height));
        var enc = FixtureFeatures.ResNet18.EncodeBatch([P("upright.jpg"), P("exif6.jpg"), P("sideways.jpg")]).Pooled;
        float exif = Vectors.Cosine(enc.Row(0), enc.Row(1)), sideways = Vectors.Cosine(enc.Row(0), enc.Row(2));
        output.WriteLine($"cosine to the upright JPEG: EXIF-tagged copy {exif:F4}, same pixels untagged (sideways) {sideways:F4}");
        // Not 1: the sideways copy was JPEG-compressed in its stored orientation, so its 8x8 blocks fall elsewhere.
        Assert.True(exif > 0.98f, $"EXIF copy cosine {exif}");
        Assert.True(exif > sideways + 0.01f, $"EXIF {exif} vs sideways {sideways}");
    }

    [Fact]
    public void Latin1_pairs_file_is_refused_with_line_and_byte()
    {
        var lines = File.ReadAllLines(FixtureFeatures.PairsFile).Take(4).ToList();
        var fields = lines[2].Split('\t');
        fields[0] = Path.Combine(FixtureFeatures.Dir, "pairs", fields[0]);
        fields[1] = "A caf\u00e9 cr\u00e8me.";
        lines[2] = string.Join('\t', fields);
        File.WriteAllText(P("latin1.tsv"), string.Join("\n", lines) + "\n", System.Text.Encoding.Latin1);
        var e = Assert.Throws<InvalidDataException>(() => PairsFile.Read(P("latin1.tsv")));
        output.WriteLine(e.Message);
        Assert.Contains("line 3, byte", e.Message);
        Assert.Contains("not valid UTF-8 (byte 0xE9)", e.Message);
        // The same text as UTF-8 (with and without BOM) reads, with the accents intact.
        File.WriteAllText(P("utf8.tsv"), string.Join("\n", lines) + "\n", new System.Text.UTF8Encoding(true));
        Assert.Equal("A caf\u00e9 cr\u00e8me.", PairsFile.Read(P("utf8.tsv")).Rows[1].Caption);
    }

    [Fact]
    public void Disk_full_while_checkpointing_keeps_the_previous_checkpoint_and_leaves_no_temp_file()
    {
        var data = new InMemoryAlignmentData(FixtureFeatures.Images.Pooled, FixtureFeatures.Texts.Pooled);
        var options = new AlignmentOptions
        {
            Projector = new ProjectorOptions { EmbeddingDimension = 32 },
            Training = new AlignmentTrainingOptions { Epochs = 2, BatchSize = 16, TorchThreads = 1, CheckpointDirectory = _dir },
        };
        new AlignmentTrainer(options).Fit(data).Model.Dispose();
        var ckpt = Path.Combine(_dir, AlignmentTrainer.CheckpointFile);
        var good = File.ReadAllBytes(ckpt);
        AtomicFile.DiskFullAfterBytes.Value = new AtomicFile.DiskFullRule(AlignmentTrainer.CheckpointFile, 4096);
        try
        {
            var e = Assert.Throws<IOException>(() => new AlignmentTrainer(options with { Training = options.Training with { Epochs = 3 } }).Fit(data));
            Assert.Contains("No space left on device", e.Message);
        }
        finally { AtomicFile.DiskFullAfterBytes.Value = null; }
        Assert.Equal(good, File.ReadAllBytes(ckpt));
        Assert.Equal(new[] { ckpt }, Directory.GetFiles(_dir));
        // The intact checkpoint still resumes (same options as written).
        new AlignmentTrainer(options).Resume(data).Model.Dispose();
    }
}
