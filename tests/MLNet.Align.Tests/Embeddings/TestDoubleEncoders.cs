using System.Security.Cryptography;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using SkiaSharp;

namespace MLNet.Align.Tests.Embeddings;

/// <summary>
/// TEST DOUBLE (not a model): a small deterministic image "encoder" for the store/pipeline mechanics tests, where
/// what matters is bookkeeping (which item lands where, resume, partitions), not meaning. Features are pseudo-random
/// values seeded by the SHA-256 of the image file's bytes (8-d pooled, 4 tokens of 3-d). It decodes each file header
/// with SkiaSharp so undecodable files fail like a real encoder (InvalidDataException naming the file). End-to-end
/// behaviour on the real ResNet18/MiniLM encoders is covered by RealEncoderEmbeddingTests.
/// </summary>
public sealed class HashImageEncoder : IImageEncoder
{
    public const int Dim = 8, TokenCount = 4, TokenDim = 3;
    public EncoderIdentity Identity { get; } = new("hash-image-double", new string('a', 64), Dim, TokenDim);
    public List<string> Encoded { get; } = [];

    public EncodedBatch EncodeBatch(IReadOnlyList<string> imagePaths, bool withTokens = false, CancellationToken cancellationToken = default)
    {
        var pooled = new float[imagePaths.Count * Dim];
        var tokens = new float[imagePaths.Count * TokenCount * TokenDim];
        for (int i = 0; i < imagePaths.Count; i++)
        {
            string p = imagePaths[i];
            if (!File.Exists(p)) throw new FileNotFoundException($"Image not found: {p}", p);
            using (var codec = SKCodec.Create(p))
                if (codec == null) throw new InvalidDataException($"Cannot decode image {p}.");
            var rng = new Random(BitConverter.ToInt32(SHA256.HashData(File.ReadAllBytes(p))));
            for (int j = 0; j < Dim; j++) pooled[i * Dim + j] = rng.NextSingle() * 4 - 2;
            for (int j = 0; j < TokenCount * TokenDim; j++) tokens[i * TokenCount * TokenDim + j] = rng.NextSingle();
        }
        lock (Encoded) Encoded.AddRange(imagePaths);
        return new EncodedBatch(new EmbeddingMatrix(pooled, imagePaths.Count, Dim),
            withTokens ? new TokenTensor(tokens, imagePaths.Count, TokenCount, TokenDim, Enumerable.Repeat(TokenCount, imagePaths.Count).ToArray()) : null);
    }

    public EncodedBatch EncodeBitmaps(IReadOnlyList<SKBitmap> images, bool withTokens = false, CancellationToken cancellationToken = default)
        => throw new NotSupportedException("The test double encodes files only.");

    public void Dispose() { }
}

/// <summary>
/// TEST DOUBLE (not a model): deterministic text "encoder" for mechanics tests. Pooled 6-d values seeded by the
/// SHA-256 of the text; one 5-d token per whitespace-separated word (so token lengths vary like a real tokenizer's).
/// </summary>
public sealed class HashTextEncoder : ITextEncoder
{
    public const int Dim = 6, TokenDim = 5;
    public EncoderIdentity Identity { get; } = new("hash-text-double", new string('b', 64), Dim, TokenDim);
    public List<string> Encoded { get; } = [];

    public static int WordCount(string s) => s.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;

    public EncodedBatch EncodeBatch(IReadOnlyList<string> texts, bool withTokens = false, CancellationToken cancellationToken = default)
    {
        int max = texts.Count == 0 ? 0 : texts.Max(WordCount);
        var pooled = new float[texts.Count * Dim];
        var tokens = new float[texts.Count * max * TokenDim];
        var lengths = new int[texts.Count];
        for (int i = 0; i < texts.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(texts[i])) throw new ArgumentException($"Text {i} is empty.", nameof(texts));
            var rng = new Random(BitConverter.ToInt32(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(texts[i]))));
            for (int j = 0; j < Dim; j++) pooled[i * Dim + j] = rng.NextSingle() * 2 - 1;
            lengths[i] = WordCount(texts[i]);
            for (int j = 0; j < lengths[i] * TokenDim; j++) tokens[(i * max) * TokenDim + j] = rng.NextSingle() + 1;
        }
        lock (Encoded) Encoded.AddRange(texts);
        return new EncodedBatch(new EmbeddingMatrix(pooled, texts.Count, Dim), withTokens ? new TokenTensor(tokens, texts.Count, max, TokenDim, lengths) : null);
    }

    public void Dispose() { }
}

/// <summary>Shared helpers: fixture paths, temp folders, file comparison.</summary>
public static class StoreTestData
{
    public static string FixturePairs => FixtureFeatures.PairsFile;
    public static string FixtureImages => FixtureFeatures.PairImages;

    private static readonly string Root = Path.Combine(Path.GetTempPath(), "mlnet-align-store-tests", Guid.NewGuid().ToString("N")[..10]);

    static StoreTestData()
    {
        // Stores with tokens take megabytes: remove this run's folders when the test process ends.
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(Root, recursive: true); } catch (IOException) { } };
    }

    public static string NewTempDir()
    {
        string d = Path.Combine(Root, Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>The first <paramref name="rows"/> fixture pairs as a TSV with absolute image paths.</summary>
    public static string WriteFixtureSubset(string dir, int rows)
    {
        var lines = File.ReadAllLines(FixturePairs);
        string path = Path.Combine(dir, "subset.tsv");
        File.WriteAllLines(path, lines.Take(1 + rows).Select((l, i) => i == 0 ? l : Path.Combine(Path.GetDirectoryName(FixturePairs)!, l)));
        return path;
    }

    /// <summary>A TSV (absolute image paths) in which some fixture images get several captions.</summary>
    public static string WriteMultiCaptionPairs(string dir, int images, int captionsEvery = 3)
    {
        var files = Directory.GetFiles(FixtureImages, "*.png").OrderBy(f => f, StringComparer.Ordinal).Take(images).ToArray();
        var lines = new List<string> { "image\tcaption\tlabel" };
        for (int i = 0; i < files.Length; i++)
        {
            lines.Add($"{files[i]}\tpicture number {i} of {Path.GetFileNameWithoutExtension(files[i])}\tc{i % 4}");
            if (i % captionsEvery == 0) lines.Add($"{files[i]}\tanother caption for image {i}\tc{i % 4}");
        }
        // a later extra caption for image 0: caption sets are kept even when not adjacent
        lines.Add($"{files[0]}\ta third caption for the first image\tc0");
        string path = Path.Combine(dir, "multi.tsv");
        File.WriteAllLines(path, lines);
        return path;
    }

    public static Dictionary<string, byte[]> ReadAllFiles(string dir)
        => Directory.GetFiles(dir).ToDictionary(f => Path.GetFileName(f)!, File.ReadAllBytes);

    public static void AssertSameFiles(string expectedDir, string actualDir)
    {
        var a = ReadAllFiles(expectedDir);
        var b = ReadAllFiles(actualDir);
        Assert.Equal(a.Keys.OrderBy(k => k), b.Keys.OrderBy(k => k));
        foreach (var (name, bytes) in a) Assert.True(bytes.AsSpan().SequenceEqual(b[name]), $"{name} differs between {expectedDir} and {actualDir}");
    }
}
