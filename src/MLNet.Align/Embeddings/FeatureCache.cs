using MLNet.Align.Encoders;

namespace MLNet.Align.Embeddings;

/// <summary>
/// Encodes pairs files and ImageFolder trees with one pair of frozen encoders into the per-key embedding cache
/// (<c>&lt;root&gt;/&lt;key&gt;/</c>, fp16), so a re-run does no encoder work. Images are identified by content
/// (SHA-256 of the file, re-hashed when its size or last-write time changes): an image edited in place is re-encoded. Used by `train --pairs`, the evaluation
/// commands and the demo.
/// </summary>
public sealed class FeatureCache : IDisposable
{
    private readonly bool _ownsEncoders;

    /// <summary>Opens the packaged encoders (or the given ones, not disposed here) over <paramref name="cacheRoot"/>
    /// (default: $MLNET_ALIGN_CACHE, else ~/.cache/mlnet-align/embeddings).</summary>
    public FeatureCache(string? cacheRoot = null, IImageEncoder? image = null, ITextEncoder? text = null)
    {
        Root = Path.GetFullPath(cacheRoot ?? Environment.GetEnvironmentVariable("MLNET_ALIGN_CACHE")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "mlnet-align", "embeddings"));
        _ownsEncoders = image is null && text is null;
        Image = image ?? PackagedEncoders.ResNet18();
        Text = text ?? PackagedEncoders.MiniLM();
    }

    /// <summary>The cache root folder.</summary>
    public string Root { get; }
    /// <summary>The image encoder.</summary>
    public IImageEncoder Image { get; }
    /// <summary>The text encoder.</summary>
    public ITextEncoder Text { get; }
    /// <summary>Options of every store written (fp16 pooled features).</summary>
    public EmbeddingPipelineOptions Options { get; init; } = new() { DType = EmbeddingDType.Float16 };
    /// <summary>Shows encoding progress; null = none.</summary>
    public IProgressDisplay? Progress { get; init; }
    /// <summary>Receives a one-line summary per encoded store; null = none.</summary>
    public Action<string>? Log { get; init; }

    /// <summary>Encodes (or reuses) a pairs file (image + caption columns) and returns its store.</summary>
    public EmbeddingStore EncodePairs(string pairsPath, CancellationToken cancellationToken = default)
        => Encode(PairsFile.Read(pairsPath), Text, $"Encoding {Path.GetFileName(pairsPath)}", cancellationToken);

    /// <summary>Encodes (or reuses) an ImageFolder tree (ROOT/&lt;class&gt;/&lt;image&gt;) and returns the image
    /// features in the dataset's item order with their labels and class names.</summary>
    public (EmbeddingMatrix Features, int[] Labels, IReadOnlyList<string> ClassNames) EncodeImageFolder(string root, CancellationToken cancellationToken = default)
    {
        var ds = ImageFolderDataset.Load(root);
        // The store's input is a list file: write it into the cache (content-addressed name, atomic).
        var lines = new List<string> { "image\tlabel" };
        lines.AddRange(ds.Items.Select(i => $"{Path.GetFullPath(i.Path)}\t{i.Label}"));
        var text = string.Join('\n', lines) + "\n";
        var hash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text)))[..16].ToLowerInvariant();
        var listDir = Path.Combine(Root, "lists");
        Directory.CreateDirectory(listDir);
        var list = Path.Combine(listDir, $"imagefolder-{hash}.tsv");
        if (!File.Exists(list)) AtomicFile.WriteAllText(list, text);
        var store = Encode(PairsFile.Read(list, new PairsFileOptions { CaptionColumn = null }), null, $"Encoding {Path.GetFileName(Path.TrimEndingDirectorySeparator(root))}", cancellationToken);
        var stored = store.LoadPooled(cancellationToken);
        var labels = stored.Column("label").Select(int.Parse).ToArray();
        if (labels.Length != ds.Count)
            throw new InvalidDataException($"{root}: {ds.Count - labels.Length} of {ds.Count} images could not be encoded: " +
                string.Join("; ", store.Manifest.Shards.SelectMany(s => s.Skipped).Take(5).Select(s => $"{s.Image}: {s.Reason}")));
        return (stored.Image, labels, ds.ClassNames);
    }

    private EmbeddingStore Encode(PairsFile pairs, ITextEncoder? text, string title, CancellationToken ct)
    {
        var key = EmbeddingPipeline.ComputeKey(pairs, Image.Identity, text?.Identity, Options);
        string dir = EmbeddingStore.CacheDirectory(Root, key);
        // Complete and its images unchanged by content: reuse it; else the pipeline re-encodes the shards whose images changed.
        if (EmbeddingPipeline.IsUpToDate(pairs, dir, key, Options, ct)) return EmbeddingStore.Open(dir, key);
        long planned = EmbeddingPipeline.PlannedWork(pairs, Options);
        EmbeddingRunResult Work(IProgress<long>? p) => EmbeddingPipeline.Run(pairs, dir, Image, text, Options,
            p is null ? null : new EmbeddingProgressAdapter(p), ct);
        var result = Progress is null ? Work(null) : Progress.Run(title, planned, Work);
        Log?.Invoke($"  {title}: {result.Store.Rows} rows ({result.ImagesEncoded} images, {result.TextsEncoded} texts encoded in {result.Elapsed.TotalSeconds:F0} s; " +
                              $"{result.Store.Manifest.SkippedCount} skipped) -> {dir}");
        return result.Store;
    }

    /// <summary>Disposes the encoders when this cache opened them.</summary>
    public void Dispose()
    {
        if (!_ownsEncoders) return;
        Image.Dispose();
        Text.Dispose();
    }
}

/// <summary>Feeds the pipeline's item count into an <see cref="IProgressDisplay"/> step.</summary>
internal sealed class EmbeddingProgressAdapter(IProgress<long> inner) : IProgress<EmbeddingProgress>
{
    public void Report(EmbeddingProgress value) => inner.Report(value.Done);
}
