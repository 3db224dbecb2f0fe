namespace MLNet.Align.Embeddings;

/// <summary>
/// Streams an <see cref="EmbeddingStore"/> in batches for training, reading one shard at a time, so memory is
/// O(batch + one shard) whatever the store size. Row ids are store rows 0..Count-1.
/// <para>Shuffling is a <b>block shuffle</b>: with a seed, the shard order is shuffled, then the (selected) rows within
/// each shard; batches run across shard boundaries. Each row still comes exactly once per epoch and the same seed gives
/// the same order, but rows of one shard stay together within an epoch, so keep shards several batches large and vary
/// the seed per epoch. Without a seed, rows come in the given order (store order when <c>rows</c> is null).</para>
/// <para>A given order that jumps between shards (e.g. the trainer's per-epoch permutation) is served from a small
/// cache of decoded shards bounded by <see cref="ShardCacheBytes"/> (least recently used evicted), so each shard is
/// read once per epoch while they fit; beyond the budget a random order re-reads shards, and a seeded block shuffle
/// is the scalable choice.</para>
/// </summary>
public sealed class EmbeddingStoreDataSource : IAlignmentDataSource
{
    private readonly EmbeddingStore _store;

    /// <summary>Streams <paramref name="store"/>.</summary>
    /// <exception cref="ArgumentException">The store is image-only (no text to pair with).</exception>
    public EmbeddingStoreDataSource(EmbeddingStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (!store.HasText)
            throw new ArgumentException($"The store in {store.Directory} is image-only (no captions): it cannot feed image-text pairs; use LoadPooled() for labelled sets.", nameof(store));
        _store = store;
    }

    /// <summary>Opens the complete store in <paramref name="directory"/> and streams it.</summary>
    public EmbeddingStoreDataSource(string directory) : this(EmbeddingStore.Open(directory)) { }

    /// <summary>The underlying store.</summary>
    public EmbeddingStore Store => _store;

    /// <summary>Memory budget of decoded shards kept between batches (bytes, fp32 after decoding); at least one
    /// shard is always kept. Default 1 GiB.</summary>
    public long ShardCacheBytes { get; init; } = 1L << 30;
    /// <inheritdoc/>
    public long Count => _store.Rows;
    /// <inheritdoc/>
    public int ImageDimension => _store.Manifest.ImageEncoder.Dimension;
    /// <inheritdoc/>
    public int TextDimension => _store.Manifest.TextEncoder!.Dimension;
    /// <inheritdoc/>
    public int? ImageTokenDimension => _store.Manifest.Contents.ImageTokens ? _store.Manifest.ImageEncoder.TokenDimension : null;
    /// <inheritdoc/>
    public int? TextTokenDimension => _store.Manifest.Contents.TextTokens ? _store.Manifest.TextEncoder!.TokenDimension : null;

    /// <inheritdoc/>
    /// <exception cref="ArgumentOutOfRangeException">batchSize &lt;= 0 or a row outside [0, Count).</exception>
    /// <exception cref="InvalidOperationException">Tokens requested from a store that holds none.</exception>
    public IEnumerable<AlignmentBatch> GetBatches(int batchSize, IReadOnlyList<long>? rows = null, int? shuffleSeed = null,
        bool withTokens = false, CancellationToken cancellationToken = default)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "Batch size must be positive.");
        if (withTokens && !_store.HasTokens)
            throw new InvalidOperationException($"Token features were requested but the store in {_store.Directory} holds pooled embeddings only (embed with --tokens).");
        var segments = Plan(rows, shuffleSeed);
        return Stream(segments, batchSize, withTokens, cancellationToken);
    }

    /// <summary>The visiting order as (shard, local rows) segments.</summary>
    private List<(int Shard, int[] Local)> Plan(IReadOnlyList<long>? rows, int? seed)
    {
        var shards = _store.Shards;
        var segments = new List<(int, int[])>();
        if (rows == null && seed == null)
        {
            for (int k = 0; k < shards.Count; k++) if (shards[k].Rows > 0) segments.Add((k, Enumerable.Range(0, shards[k].Rows).ToArray()));
            return segments;
        }
        if (seed == null)
        {
            // Given order: consecutive rows of the same shard form one segment.
            int cur = -1; var local = new List<int>();
            foreach (long r in rows!)
            {
                int k = _store.ShardOf(r);
                if (k != cur && local.Count > 0) { segments.Add((cur, local.ToArray())); local.Clear(); }
                cur = k;
                local.Add((int)(r - _store.FirstRowOf(k)));
            }
            if (local.Count > 0) segments.Add((cur, local.ToArray()));
            return segments;
        }
        var buckets = new List<int>[shards.Count];
        if (rows == null)
            for (int k = 0; k < shards.Count; k++) buckets[k] = Enumerable.Range(0, shards[k].Rows).ToList();
        else
        {
            for (int k = 0; k < shards.Count; k++) buckets[k] = [];
            foreach (long r in rows) { int k = _store.ShardOf(r); buckets[k].Add((int)(r - _store.FirstRowOf(k))); }
        }
        var rng = new Random(seed.Value);
        var order = Enumerable.Range(0, shards.Count).ToArray();
        rng.Shuffle(order);
        foreach (int k in order)
        {
            if (buckets[k].Count == 0) continue;
            var local = buckets[k].ToArray();
            rng.Shuffle(local);
            segments.Add((k, local));
        }
        return segments;
    }

    private IEnumerable<AlignmentBatch> Stream(List<(int Shard, int[] Local)> segments, int batchSize, bool withTokens, CancellationToken ct)
    {
        int di = ImageDimension, dt = TextDimension;
        var cache = new LinkedList<(int Shard, ShardData Data, long Bytes)>(); // most recently used first
        long cached = 0;
        ShardData? data = null;
        var b = new Builder(batchSize, di, dt, withTokens);
        foreach (var (shard, local) in segments)
        {
            ct.ThrowIfCancellationRequested();
            var node = cache.First;
            while (node != null && node.Value.Shard != shard) node = node.Next;
            if (node != null)
            {
                cache.Remove(node);
                cache.AddFirst(node);
            }
            else
            {
                long bytes = EstimateBytes(_store.Shards[shard].Rows, withTokens);
                while (cache.Count > 0 && cached + bytes > ShardCacheBytes) { cached -= cache.Last!.Value.Bytes; cache.RemoveLast(); }
                cache.AddFirst((shard, _store.ReadShard(shard, textPooled: true, imageTokens: withTokens, textTokens: withTokens), bytes));
                cached += bytes;
            }
            data = cache.First!.Value.Data;
            long first = _store.FirstRowOf(shard);
            foreach (int r in local)
            {
                b.Add(data!, r, first + r);
                if (b.Count == batchSize) { yield return b.Emit(); ct.ThrowIfCancellationRequested(); }
            }
        }
        if (b.Count > 0) yield return b.Emit();
    }

    private long EstimateBytes(int rows, bool withTokens)
    {
        var m = _store.Manifest;
        long perRow = (long)ImageDimension + TextDimension;
        if (withTokens)
            perRow += (long)(m.ImageEncoder.TokenDimension ?? 0) * 64 + (long)(m.TextEncoder!.TokenDimension ?? 0) * 64; // token counts vary; a generous bound
        return Math.Max(1, rows * perRow * sizeof(float));
    }

    private sealed class Builder(int capacity, int di, int dt, bool withTokens)
    {
        private readonly List<long> _ids = new(capacity);
        private readonly List<(float[] Data, int Length, int Dim)> _imageTok = [], _textTok = [];
        private float[] _image = new float[capacity * di], _text = new float[capacity * dt];
        public int Count => _ids.Count;

        public void Add(ShardData d, int r, long id)
        {
            int i = _ids.Count;
            int slot = d.ImageSlot[r];
            d.ImagePooled.AsSpan(slot * di, di).CopyTo(_image.AsSpan(i * di, di));
            d.TextPooled!.AsSpan(r * dt, dt).CopyTo(_text.AsSpan(i * dt, dt));
            if (withTokens)
            {
                int it = d.ImageTokenLengths![slot], itStride = d.ImageTokenCount * d.ImageTokenDim;
                _imageTok.Add((d.ImageTokens!.AsSpan(slot * itStride, it * d.ImageTokenDim).ToArray(), it, d.ImageTokenDim));
                int tt = d.TextTokenLengths![r], ttStride = d.TextTokenCount * d.TextTokenDim;
                _textTok.Add((d.TextTokens!.AsSpan(r * ttStride, tt * d.TextTokenDim).ToArray(), tt, d.TextTokenDim));
            }
            _ids.Add(id);
        }

        public AlignmentBatch Emit()
        {
            int n = _ids.Count;
            var batch = new AlignmentBatch(_ids.ToArray(),
                new EmbeddingMatrix(_image.AsSpan(0, n * di).ToArray(), n, di),
                new EmbeddingMatrix(_text.AsSpan(0, n * dt).ToArray(), n, dt),
                withTokens ? Pad(_imageTok) : null, withTokens ? Pad(_textTok) : null);
            _ids.Clear(); _imageTok.Clear(); _textTok.Clear();
            return batch;
        }

        private static TokenTensor Pad(List<(float[] Data, int Length, int Dim)> items)
        {
            int max = items.Max(t => t.Length), dim = items[0].Dim;
            var data = new float[checked(items.Count * max * dim)];
            for (int i = 0; i < items.Count; i++) items[i].Data.CopyTo(data, i * max * dim);
            return new TokenTensor(data, items.Count, max, dim, items.Select(t => t.Length).ToArray());
        }
    }
}
