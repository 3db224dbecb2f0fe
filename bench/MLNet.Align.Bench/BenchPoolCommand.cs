using System.CommandLine;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Terminal;

namespace MLNet.Align.Bench;

/// <summary>
/// <c>mlnet-align bench-pool</c>: writes a large synthetic pool for the stage-2 benchmark only. Every row repeats a
/// real embedding of a source store (chosen by a hash of the row) plus Gaussian noise, through the ordinary
/// <see cref="EmbeddingPipeline"/> (so the result is a normal store), with 1,000 x 1,000 distinct image paths made of
/// symbolic links to one real image. The text side records the source store's text encoder identity, so prototypes
/// of the packaged encoder match it. Never use such a pool for training or evaluation.
/// </summary>
public sealed class BenchPoolCommand : ICliCommand
{
    /// <inheritdoc/>
    public Command Build()
    {
        var like = new Option<DirectoryInfo>("--like") { Description = "A real embedding store whose embeddings are repeated.", Required = true };
        var rows = new Option<int>("--rows") { Description = "Rows (pairs) of the synthetic pool.", DefaultValueFactory = _ => 1_000_000 };
        var output = new Option<DirectoryInfo>("--out") { Description = "Work folder: links/, pairs.tsv and the store in store/.", Required = true };
        var noise = new Option<double>("--noise") { Description = "Noise standard deviation relative to each vector's RMS.", DefaultValueFactory = _ => 0.1 };
        var cmd = new Command("bench-pool", "Benchmark only: a large synthetic pool repeating real embeddings with noise (for 'curate' timing).");
        foreach (var o in new Option[] { like, rows, output, noise }) cmd.Options.Add(o);
        cmd.SetAction((p, ct) => Task.Run(() => CliErrors.Run(() => Run(p.GetValue(like)!.FullName, p.GetValue(rows), p.GetValue(output)!.FullName, p.GetValue(noise), ct))));
        return cmd;
    }

    /// <summary>Largest --rows: the pool's pairs file is read into memory (about 200 bytes a row, 4 GB at this bound).</summary>
    internal const int MaxRows = 20_000_000;

    private static int Run(string likeDir, int rows, string outDir, double noise, CancellationToken ct)
    {
        // Checked before anything is read or written: a NaN noise would write a NaN store, a negative count a broken one.
        if (rows < 1 || rows > MaxRows) throw new ArgumentException($"--rows must be in [1, {MaxRows}], got {rows}.");
        if (!double.IsFinite(noise) || noise < 0) throw new ArgumentException($"--noise must be a finite number >= 0, got {noise}.");
        var like = EmbeddingStore.Open(likeDir).LoadPooled(ct);
        if (like.Text is null) throw new ArgumentException($"{likeDir} is image-only: the benchmark pool needs captions.");
        using var outLock = CliLocks.Folder(outDir);
        string img = Path.Combine(outDir, "links", "img");
        Directory.CreateDirectory(img);
        int side = (int)Math.Ceiling(Math.Sqrt(rows));
        string real = like.UniqueImagePaths[0];
        for (int b = 0; b < side; b++)
        {
            string f = Path.Combine(img, $"f{b:D4}.png");
            if (!File.Exists(f)) File.CreateSymbolicLink(f, real);
        }
        for (int a = 0; a < side; a++)
        {
            string d = Path.Combine(outDir, "links", $"d{a:D4}");
            if (!Directory.Exists(d)) Directory.CreateSymbolicLink(d, img);
        }
        string pairs = Path.Combine(outDir, "pairs.tsv");
        if (!File.Exists(pairs))
            AtomicFile.Write(pairs, s =>
            {
                using var w = new StreamWriter(s, new System.Text.UTF8Encoding(false), 1 << 16, leaveOpen: true);
                w.Write("image\tcaption\n");
                for (int i = 0; i < rows; i++) w.Write($"links/d{i / side:D4}/f{i % side:D4}.png\tpair {i}\n");
            });
        var file = PairsFile.Read(pairs);
        using var image = new ReplayImageEncoder(like.Store.Manifest.ImageEncoder, like.UniqueImageEmbeddings(), noise);
        using var text = new ReplayTextEncoder(like.Store.Manifest.TextEncoder!, like.Text, noise);
        var options = new EmbeddingPipelineOptions { DType = EmbeddingDType.Float16, BatchSize = 256 };
        var result = CliProgress.Run("Writing the benchmark pool", EmbeddingPipeline.PlannedWork(file, options), p =>
            EmbeddingPipeline.Run(file, Path.Combine(outDir, "store"), image, text, options, new EmbeddingProgressAdapter(p), ct));
        Console.WriteLine($"Benchmark pool: {result.Store.Directory}: {result.Store.Rows} rows, {result.Store.Shards.Count} shards, {result.Store.SizeInBytes / 1048576.0:F0} MiB.");
        return 0;
    }

    private static float[] Noisy(EmbeddingMatrix source, string key, double noise, bool normalize)
    {
        ulong h = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(key)));
        var row = source.Row((int)(h % (ulong)source.Rows)).ToArray();
        var rng = new Random((int)(h >> 32));
        double rms = Math.Sqrt(row.Sum(v => (double)v * v) / row.Length);
        for (int j = 0; j < row.Length; j++)
            row[j] += (float)(noise * rms * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        if (normalize)
        {
            float n = System.Numerics.Tensors.TensorPrimitives.Norm(row);
            System.Numerics.Tensors.TensorPrimitives.Divide(row, n, row);
        }
        return row;
    }

    private sealed class ReplayImageEncoder(EncoderIdentity identity, EmbeddingMatrix source, double noise) : IImageEncoder
    {
        public EncoderIdentity Identity { get; } = identity with { TokenDimension = null };
        public EncodedBatch EncodeBatch(IReadOnlyList<string> imagePaths, bool withTokens = false, CancellationToken cancellationToken = default)
            => new(new EmbeddingMatrix(imagePaths.SelectMany(p => Noisy(source, p, noise, false)).ToArray(), imagePaths.Count, source.Columns), null);
        public EncodedBatch EncodeBitmaps(IReadOnlyList<SkiaSharp.SKBitmap> images, bool withTokens = false, CancellationToken cancellationToken = default)
            => throw new NotSupportedException();
        public void Dispose() { }
    }

    private sealed class ReplayTextEncoder(EncoderIdentity identity, EmbeddingMatrix source, double noise) : ITextEncoder
    {
        public EncoderIdentity Identity { get; } = identity with { TokenDimension = null };
        public EncodedBatch EncodeBatch(IReadOnlyList<string> texts, bool withTokens = false, CancellationToken cancellationToken = default)
            => new(new EmbeddingMatrix(texts.SelectMany(t => Noisy(source, t, noise, true)).ToArray(), texts.Count, source.Columns), null);
        public void Dispose() { }
    }
}
