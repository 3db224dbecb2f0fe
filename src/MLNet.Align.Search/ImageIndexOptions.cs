namespace MLNet.Align.Search;

/// <summary>How the approximate (HNSW) index stores each aligned vector.</summary>
public enum VectorQuantization
{
    /// <summary>16-bit floats (the default: half the memory of fp32, recall within a point of it).</summary>
    Float16,
    /// <summary>32-bit floats.</summary>
    Float32,
    /// <summary>8-bit integers (a quarter of fp32's memory; inner product on the scaled values; recall@10 stays near
    /// 0.87-0.91 whatever ef_search: the rounding, not the graph).</summary>
    Int8,
}

/// <summary>Options of <see cref="ImageIndex"/>. The HNSW settings are fixed when the approximate index is first built;
/// the others apply per run.</summary>
public sealed class ImageIndexOptions
{
    /// <summary>Storage of the approximate index (default <see cref="VectorQuantization.Float16"/>). Changing it rebuilds
    /// the approximate index from the catalog (no image is re-encoded).</summary>
    public VectorQuantization Quantization { get; set; } = VectorQuantization.Float16;
    /// <summary>HNSW connectivity M (edges per node; default 16).</summary>
    public int Connectivity { get; set; } = 16;
    /// <summary>HNSW candidate list while inserting (ef_construction; default 128).</summary>
    public int ExpansionAdd { get; set; } = 128;
    /// <summary>HNSW candidate list while searching (ef_search; default 512: on 100k images, real and real-plus-noise,
    /// text queries, which lie far from every image, need it: their recall@10 was 0.913 at 128 and 0.950 at 256,
    /// docs/search.md; a walk at 512 takes about half a millisecond, a text query's encoding 15-20): a query asks the
    /// graph for max(k, this) neighbours, re-scores the best max(4k, 40) of them in fp32 and keeps the best k.</summary>
    public int ExpansionSearch { get; set; } = 512;
    /// <summary>Below this many items every query is exact and no approximate index is kept (default 10,000: an exact
    /// scan of 10k x 256 floats takes about a millisecond).</summary>
    public int ExactBelow { get; set; } = 10_000;
    /// <summary>When the deletions since the approximate index was built pass this fraction of its size, the next
    /// update rebuilds it instead of adding tombstones (default 0.2).</summary>
    public double CompactFraction { get; set; } = 0.2;
    /// <summary>Images per encoder call (default 32).</summary>
    public int BatchSize { get; set; } = 32;
    /// <summary>Image batches in flight (0 = what the encoder serves).</summary>
    public int Concurrency { get; set; }
    /// <summary>File name endings taken as images when indexing a folder (case-insensitive).</summary>
    public IReadOnlyList<string> Extensions { get; set; } = MLNet.Align.Embeddings.ImageFolderDataset.DefaultExtensions;

    internal void Validate()
    {
        if (Connectivity is < 2 or > 256) throw new ArgumentOutOfRangeException(nameof(Connectivity), Connectivity, "HNSW connectivity must be in [2, 256].");
        if (ExpansionAdd < 1) throw new ArgumentOutOfRangeException(nameof(ExpansionAdd), ExpansionAdd, "ExpansionAdd must be >= 1.");
        if (ExpansionSearch < 1) throw new ArgumentOutOfRangeException(nameof(ExpansionSearch), ExpansionSearch, "ExpansionSearch must be >= 1.");
        if (ExactBelow < 0) throw new ArgumentOutOfRangeException(nameof(ExactBelow), ExactBelow, "ExactBelow must be >= 0.");
        if (!(CompactFraction is > 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(CompactFraction), CompactFraction, "CompactFraction must be in (0, 1].");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "BatchSize must be >= 1.");
        if (Concurrency < 0) throw new ArgumentOutOfRangeException(nameof(Concurrency), Concurrency, "Concurrency must be >= 0 (0 = automatic).");
    }
}

/// <summary>What one search asks for beyond the query vector.</summary>
public sealed class SearchOptions
{
    /// <summary>Hits wanted (default 10, at least 1). Filters never shrink it: when k items match, k are returned.</summary>
    public int K { get; set; } = 10;
    /// <summary>Only items whose path lies under this folder (an absolute or relative path; compared on whole path
    /// segments, so "photos/2023" does not match "photos/2023-old").</summary>
    public string? Folder { get; set; }
    /// <summary>Only items last written at or after this time.</summary>
    public DateTimeOffset? After { get; set; }
    /// <summary>Only items last written before this time.</summary>
    public DateTimeOffset? Before { get; set; }
    /// <summary>Relative cut-off: keep only hits whose score is within this of the best hit's (cosine units, e.g. 0.05).
    /// Unlike a flat threshold it means the same for every query, whose score scales differ.</summary>
    public float? WithinOfBest { get; set; }
    /// <summary>Exact search (every item scored) even where an approximate index exists.</summary>
    public bool Exact { get; set; }

    internal void Validate()
    {
        if (K < 1) throw new ArgumentOutOfRangeException(nameof(K), K, "k must be >= 1.");
        if (WithinOfBest is { } w && !(w >= 0 && float.IsFinite(w))) throw new ArgumentOutOfRangeException(nameof(WithinOfBest), w, "The relative cut-off must be a finite number >= 0.");
        if (After is { } a && Before is { } b && a >= b) throw new ArgumentException($"The date range is empty: after {a:u} is not before {b:u}.");
    }
}

/// <summary>One search result.</summary>
/// <param name="Id">The item's catalog id (stable across moves; a changed file gets a new id).</param>
/// <param name="Path">Full path of the image.</param>
/// <param name="Score">Cosine similarity of the query and the image in the aligned space, in [-1, 1].</param>
/// <param name="Modified">The file's last-write time when indexed.</param>
/// <param name="Size">The file's size in bytes when indexed.</param>
public sealed record SearchHit(long Id, string Path, float Score, DateTimeOffset Modified, long Size);

/// <summary>One indexed image with its aligned embedding.</summary>
/// <param name="Id">Catalog id (stable across moves; never reused).</param>
/// <param name="Path">Full path.</param>
/// <param name="Sha256">Content SHA-256 (lower-case hex).</param>
/// <param name="Size">Bytes.</param>
/// <param name="Modified">Last-write time when indexed.</param>
/// <param name="Aligned">Aligned embedding [dimension], unit length.</param>
public sealed record IndexedItem(long Id, string Path, string Sha256, long Size, DateTimeOffset Modified, float[] Aligned);
