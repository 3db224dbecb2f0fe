using System.CommandLine;
using System.IO.Compression;
using System.Text.Json.Nodes;
using Microsoft.ML;
using MLNet.Align.Cli;
using MLNet.Align.Cli.Commands;
using MLNet.Align.Embeddings;
using MLNet.Align.Projection;
using MLNet.Align.Tests.ZeroShot;
using MLNet.Align.ZeroShot;
using SkiaSharp;
using MLNet.Align.Terminal;

namespace MLNet.Align.Tests.Reliability;

/// <summary>
/// The hostile inputs of the bad-input suite, every one made from a real fixture file (tests/fixtures): truncated
/// copies of a real PNG and of a JPEG re-encoded from it, an EXIF-rotated copy (pixels stored turned 90 degrees
/// counter-clockwise, tagged orientation 6 = "rotate 90 clockwise to view"), the fixture pairs re-encoded as Latin-1,
/// a truncated and a foreign zip next to a real classifier zip, and small real embedding stores (complete, one row,
/// partial, a shard deleted) written by `embed` from fixture pairs. Built once per test class under a temp folder.
/// </summary>
public sealed class BadInputFixture : IDisposable
{
    public string Root { get; } = Path.Combine(Path.GetTempPath(), $"bad-inputs-{Guid.NewGuid():N}");
    public string P(string relative) => Path.Combine(Root, relative);

    /// <summary>The real fixture image every derived file comes from (a tuxpaint apple, 8-class icon set).</summary>
    public static string SourceImage => Fixtures.Image("tux_food_apple_fuji.png");

    public BadInputFixture()
    {
        Directory.CreateDirectory(Root);
        // Images: good copies, truncations, a JPEG, an EXIF-rotated JPEG, a text file, a folder.
        File.Copy(SourceImage, P("good.png"));
        File.Copy(Fixtures.Image("emoji_1f412.png"), P("good2.png"));
        var png = File.ReadAllBytes(SourceImage);
        File.WriteAllBytes(P("truncated.png"), png[..(png.Length * 6 / 10)]);
        using (var bitmap = SKBitmap.Decode(SourceImage))
        {
            var jpeg = Encode(bitmap, SKEncodedImageFormat.Jpeg);
            File.WriteAllBytes(P("photo.jpg"), jpeg);
            File.WriteAllBytes(P("truncated.jpg"), jpeg[..(jpeg.Length / 2)]);
            using var stored = RotateCounterClockwise(bitmap);
            File.WriteAllBytes(P("exif-rotate90.jpg"), WithExifOrientation(Encode(stored, SKEncodedImageFormat.Jpeg), 6));
            File.WriteAllBytes(P("stored-sideways.jpg"), Encode(stored, SKEncodedImageFormat.Jpeg));
        }
        File.WriteAllText(P("not-an-image.png"), "this is a text file with a .png name\n");
        Directory.CreateDirectory(P("folder.png"));

        // Pairs files: real fixture rows (absolute image paths), a Latin-1 re-encoding, a one-row file, a truncated image.
        var rows = FixtureFeatures.Pairs.Take(6).Select(p => (Image: Path.Combine(FixtureFeatures.Dir, "pairs", p.Image), p.Caption)).ToList();
        WritePairs("pairs6.tsv", rows);
        WritePairs("pairs1.tsv", rows.Take(1).ToList());
        WritePairs("pairs-truncated-image.tsv", rows.Take(3).Append((P("truncated.png"), "A truncated apple.")).ToList());
        var latin = rows.Take(4).ToList();
        latin[2] = (latin[2].Image, "A caf\u00e9 cr\u00e8me next to a r\u00f4ti.");
        File.WriteAllText(P("pairs-latin1.tsv"), "image\tcaption\n" + string.Concat(latin.Select(r => $"{r.Image}\t{r.Caption}\n")), System.Text.Encoding.Latin1);
        File.WriteAllText(P("vocab.txt"), "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\napple\n");
        File.WriteAllText(P("not-onnx.onnx"), "not an onnx model\n");
        File.WriteAllText(P("classes.txt"), string.Join('\n', Fixtures.IconClasses) + "\n");

        // Config files.
        File.WriteAllText(P("malformed.json"), "{ \"Training\": { \"Epochs\": 3, }\n");
        File.WriteAllText(P("misspelt-key.json"), "{ \"Training\": { \"Epochs\": 1, \"LerningRate\": 0.01 } }\n");
        foreach (var (name, training) in new[]
        {
            ("nan-weight-decay", "\"WeightDecay\": \"NaN\""), ("nan-min-lr", "\"MinLearningRate\": \"NaN\""),
            ("infinite-lr", "\"LearningRate\": \"Infinity\""), ("negative-warmup-lr", "\"WarmupStartLearningRate\": -0.001"),
            ("nan-grad-norm", "\"MaxGradientNorm\": \"NaN\""), ("threads-0", "\"TorchThreads\": 0"), ("threads-negative", "\"TorchThreads\": -4"),
        })
            File.WriteAllText(P(name + ".json"), $"{{ \"Training\": {{ {training} }} }}\n");

        // Zips: a real classifier, a truncated copy, a zip of something else, a text file named .zip.
        var zs = new ZeroShotFixture();
        ZeroShotClassifierIO.BuildAndSave(new MLContext(0), zs.Projector, zs.Classes, P("classifier.zip"));
        var zip = File.ReadAllBytes(P("classifier.zip"));
        File.WriteAllBytes(P("truncated.zip"), zip[..(zip.Length / 2)]);
        using (var foreign = ZipFile.Open(P("foreign.zip"), ZipArchiveMode.Create))
        {
            using var w = new StreamWriter(foreign.CreateEntry("readme.txt").Open());
            w.Write("a zip that is not an ML.NET model");
        }
        File.WriteAllText(P("text.zip"), "not a zip\n");
        Directory.CreateDirectory(P("empty-folder"));

        // Stores written by the real `embed` path (packaged ResNet-18 + MiniLM).
        Assert.Equal(0, EmbedCommand.Run(new EmbedCommand.EmbedArgs { Pairs = P("pairs6.tsv"), Output = P("store6"), ShardSize = 3 }));
        Assert.Equal(0, EmbedCommand.Run(new EmbedCommand.EmbedArgs { Pairs = P("pairs1.tsv"), Output = P("store1") }));
        CopyDirectory(P("store6"), P("store-partial"));
        var manifestPath = Path.Combine(P("store-partial"), EmbeddingStore.ManifestFileName);
        var manifest = JsonNode.Parse(File.ReadAllText(manifestPath))!;
        manifest["status"] = "partial";
        File.WriteAllText(manifestPath, manifest.ToJsonString());
        CopyDirectory(P("store6"), P("store-shard-deleted"));
        File.Delete(Directory.EnumerateFiles(P("store-shard-deleted"), "*.bin", SearchOption.AllDirectories).OrderBy(f => f).Last());

        // A finished training run (its --out folder holds model/, checkpoints/), for resume and `zeroshot build`.
        TrainCommand.Train(new EmbeddingStoreDataSource(P("store6")), P("trained"), TrainOptions(), resume: false, CancellationToken.None);
        // A copy that a diverging run must leave alone, and a copy whose checkpoint has 8 flipped bytes.
        CopyDirectory(P("trained"), P("trained-good"));
        CopyDirectory(P("trained"), P("trained-flipped"));
        var checkpoint = Path.Combine(P("trained-flipped"), "checkpoints", AlignmentTrainer.CheckpointFile);
        var bytes = File.ReadAllBytes(checkpoint);
        for (int i = 0; i < 8; i++) bytes[bytes.Length / 2 + i] ^= 0xFF;
        File.WriteAllBytes(checkpoint, bytes);

        // Reliability round two (issue 19): inputs that block or never end, a pixel bomb, a NaN store, a tampered
        // store, partition stores for a merge, descriptions that match no class.
        MakeFifo(P("fifo.png"));
        MakeFifo(P("fifo-pairs.tsv"));
        MakeFifo(P("fifo-classes.txt"));
        File.WriteAllBytes(P("bomb60k.png"), PixelBomb(60000, 60000));
        WritePairs("pairs-bomb.tsv", rows.Take(3).Append((P("bomb60k.png"), "A picture whose header lies.")).ToList());
        CopyDirectory(P("store6"), P("store-nan"));
        PoisonFirstShard(P("store-nan"), rehash: true);      // as a writer without the finite check would have left it
        CopyDirectory(P("store6"), P("store-tampered"));
        PoisonFirstShard(P("store-tampered"), rehash: false); // edited after it was written: the manifest disagrees
        Assert.Equal(0, EmbedCommand.Run(new EmbedCommand.EmbedArgs { Pairs = P("pairs6.tsv"), Output = P("store-p0"), ShardSize = 2, Partition = "0/2" }));
        Assert.Equal(0, EmbedCommand.Run(new EmbedCommand.EmbedArgs { Pairs = P("pairs6.tsv"), Output = P("store-p1"), ShardSize = 2, Partition = "1/2" }));
        File.WriteAllText(P("desc-nomatch.json"), "{ \"zebra\": [\"a striped horse.\"], \"harp\": [\"a string instrument.\"] }");
        File.WriteAllText(P("desc-partial.json"), $"{{ \"{Fixtures.IconClasses[0]}\": [\"a drawing of a {Fixtures.IconClasses[0]}.\"], \"zebra\": [\"a striped horse.\"] }}");

        // A photo folder for `index` with one good image among hostile ones.
        Directory.CreateDirectory(P("album/sub"));
        File.Copy(P("good.png"), P("album/good.png"));
        File.Copy(P("truncated.png"), P("album/truncated.png"));
        File.Copy(P("not-an-image.png"), P("album/sub/not-an-image.png"));
        File.Copy(P("bomb60k.png"), P("album/sub/bomb60k.png"));
        MakeFifo(P("album/fifo.png"));

        // An ImageFolder tree whose class folders hold no images.
        Directory.CreateDirectory(P("no-images/apple"));
        Directory.CreateDirectory(P("no-images/violin"));
        File.WriteAllText(P("no-images/apple/notes.txt"), "no images here\n");
    }

    /// <summary>Small, fast, deterministic options for the fixture's training runs.</summary>
    public static AlignmentOptions TrainOptions() => new()
    {
        Projector = new ProjectorOptions { EmbeddingDimension = 32 },
        Training = new AlignmentTrainingOptions { Epochs = 2, BatchSize = 2, TorchThreads = 1, WarmupSteps = 0 },
    };

    /// <summary>A named pipe (mkfifo): opening it for reading would block until a writer appears.</summary>
    public static void MakeFifo(string path)
    {
        using var p = System.Diagnostics.Process.Start("mkfifo", [path])!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }

    /// <summary>A valid PNG whose header declares <paramref name="width"/> x <paramref name="height"/> RGB pixels but
    /// whose data holds one row (254 bytes for 60000 x 60000): decoding it would allocate width x height x 4 bytes.</summary>
    public static byte[] PixelBomb(int width, int height)
    {
        static byte[] Chunk(string type, byte[] data)
        {
            var t = System.Text.Encoding.ASCII.GetBytes(type);
            var body = t.Concat(data).ToArray();
            return BigEndian((uint)data.Length).Concat(body).Concat(BigEndian(Crc32(body))).ToArray();
        }
        var ihdr = BigEndian((uint)width).Concat(BigEndian((uint)height)).Concat(new byte[] { 8, 2, 0, 0, 0 }).ToArray();
        using var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, CompressionLevel.SmallestSize, leaveOpen: true)) z.Write(new byte[1 + 3 * width]);
        return new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 13, 10, 26, 10 }
            .Concat(Chunk("IHDR", ihdr)).Concat(Chunk("IDAT", ms.ToArray())).Concat(Chunk("IEND", [])).ToArray();
    }

    private static byte[] BigEndian(uint v) => [(byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v];

    private static uint Crc32(byte[] data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }

    /// <summary>Writes NaN into column 7 of the first image embedding of the store's first shard (fp16 or fp32), and with
    /// <paramref name="rehash"/> records the new SHA-256 in the manifest (a store some other writer produced with a NaN).</summary>
    public static void PoisonFirstShard(string store, bool rehash)
    {
        var manifestPath = Path.Combine(store, EmbeddingStore.ManifestFileName);
        var manifest = JsonNode.Parse(File.ReadAllText(manifestPath))!;
        var shard = manifest["shards"]![0]!;
        string file = Path.Combine(store, shard["file"]!.GetValue<string>());
        var bytes = File.ReadAllBytes(file);
        int rows = BitConverter.ToInt32(bytes, 12);
        bool fp16 = BitConverter.ToInt32(bytes, 8) == 1;
        int at = 56 + 4 * rows + (fp16 ? 2 : 4) * 7; // header, image slots, then image 0's pooled embedding
        if (fp16) BitConverter.TryWriteBytes(bytes.AsSpan(at, 2), Half.NaN);
        else BitConverter.TryWriteBytes(bytes.AsSpan(at, 4), float.NaN);
        File.WriteAllBytes(file, bytes);
        if (!rehash) return;
        shard["sha256"] = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
        File.WriteAllText(manifestPath, manifest.ToJsonString());
    }

    private void WritePairs(string name, IReadOnlyList<(string Image, string Caption)> rows)
        => File.WriteAllText(P(name), "image\tcaption\n" + string.Concat(rows.Select(r => $"{r.Image}\t{r.Caption}\n")));

    private static byte[] Encode(SKBitmap bitmap, SKEncodedImageFormat format)
    {
        using var data = bitmap.Encode(format, 95);
        return data.ToArray();
    }

    /// <summary>The pixels as a camera held sideways stores them: turned 90 degrees counter-clockwise.</summary>
    public static SKBitmap RotateCounterClockwise(SKBitmap source)
    {
        var result = new SKBitmap(new SKImageInfo(source.Height, source.Width, SKColorType.Rgba8888, SKAlphaType.Premul));
        for (int y = 0; y < source.Height; y++)
            for (int x = 0; x < source.Width; x++)
                result.SetPixel(y, source.Width - 1 - x, source.GetPixel(x, y));
        return result;
    }

    /// <summary>Inserts an APP1 Exif segment (little-endian TIFF, one IFD entry: Orientation) after the JPEG's SOI.</summary>
    public static byte[] WithExifOrientation(byte[] jpeg, ushort orientation)
    {
        var tiff = new List<byte> { (byte)'I', (byte)'I', 42, 0, 8, 0, 0, 0, 1, 0 };      // header, IFD0 at 8, 1 entry
        tiff.AddRange(new byte[] { 0x12, 0x01, 3, 0, 1, 0, 0, 0, (byte)orientation, 0, 0, 0 }); // 0x0112 SHORT x1
        tiff.AddRange(new byte[] { 0, 0, 0, 0 });                                            // no next IFD
        var payload = "Exif\0\0"u8.ToArray().Concat(tiff).ToArray();
        int len = payload.Length + 2;
        var segment = new byte[] { 0xFF, 0xE1, (byte)(len >> 8), (byte)len }.Concat(payload);
        return jpeg[..2].Concat(segment).Concat(jpeg[2..]).ToArray();
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var dir in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(dir.Replace(from, to));
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(file, file.Replace(from, to));
    }

    /// <summary>Runs `mlnet-align ARGS` in process (every ICliCommand of the tool, as its Program.cs builds them, and of the
    /// bench program, bench/MLNet.Align.Bench), capturing stdout and stderr.</summary>
    public static (int Exit, string Out, string Err) Cli(params string[] args)
    {
        var root = new RootCommand();
        foreach (var type in typeof(MLNet.Align.Cli.Commands.TrainCommand).Assembly.GetTypes().Concat(typeof(MLNet.Align.Bench.BenchCommand).Assembly.GetTypes())
                     .Where(t => typeof(ICliCommand).IsAssignableFrom(t) && !t.IsAbstract && !t.IsInterface).OrderBy(t => t.Name, StringComparer.Ordinal))
            root.Subcommands.Add(((ICliCommand)Activator.CreateInstance(type)!).Build());
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o); Console.SetError(e);
        try
        {
            int exit = root.Parse(args).Invoke(new InvocationConfiguration { Output = o, Error = e });
            return (exit, o.ToString(), e.ToString());
        }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
    }

    public void Dispose() { try { Directory.Delete(Root, recursive: true); } catch (IOException) { } }
}
