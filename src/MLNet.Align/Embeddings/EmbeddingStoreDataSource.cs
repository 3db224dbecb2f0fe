using MLNet.Align.Encoders;
using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using MLNet.Align.Projection;

namespace MLNet.Align.Embeddings;

/// <summary>How <see cref="EmbeddingStoreDataSource"/> orders a shuffled epoch.</summary>
public enum StoreShuffle
{
    /// <summary>A uniform permutation of all rows (the default): the order owes nothing to the input's (a class-sorted
    /// pairs file trains as its shuffled copy does). Rows are read one by one in place (<see cref="StoreRowReader"/>), so
    /// memory stays O(batch) plus 4 bytes per row of tables; reads are random, served by the OS page cache when the
    /// store fits in it.</summary>
    Full,
    /// <summary>WebDataset-style shard-buffered shuffle: shard order shuffled, groups of
    /// <see cref="EmbeddingStoreDataSource.ShuffleBufferShards"/> shards shuffled together, read sequentially. Rows of a
    /// group stay within one stretch of the epoch, so an input sorted by class gives batches of a few classes.</summary>
    ShardBuffered,
}

/// <summary>
/// Streams an <see cref="EmbeddingStore"/> in batches for training with bounded memory, whatever the store size.
/// Row ids are store rows 0..Count-1.
/// <para><b>Shuffling</b> (<see cref="EpochOrder"/>, and <see cref="GetBatches"/> with a seed) follows
/// <see cref="Shuffle"/>: by default a full uniform permutation (<see cref="StoreShuffle.Full"/>), or the shard-buffered
/// shuffle (<see cref="StoreShuffle.ShardBuffered"/>: the shard order is shuffled, the shuffled shards are taken in groups
/// of <see cref="ShuffleBufferShards"/>, and the rows of each group are fully shuffled together). Every row comes
/// exactly once per epoch and the same seed gives the same order.</para>
/// <para><b>Streaming</b>: the visiting order is planned once per call (one shard lookup per row, by binary search
/// over the shard offsets). An order that stays within a few shards at a time (store order, the shard-buffered shuffle,
/// or any order touching at most <see cref="ShuffleBufferShards"/> shards) decodes whole shards when first needed and
/// drops each after the last row that needs it; an order that jumps between more shards (a full permutation) reads
/// its rows one by one in place, so memory does not grow with the store. Shards are read and batches assembled on a
/// background thread, <see cref="PrefetchBatches"/> batches ahead of the consumer; the batches and their order do not
/// depend on timing.</para>
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

    /// <summary>The image encoder the store recorded in its manifest.</summary>
    public EncoderIdentity? ImageEncoder => _store.Manifest.ImageEncoder;
    /// <summary>The text encoder the store recorded in its manifest.</summary>
    public EncoderIdentity? TextEncoder => _store.Manifest.TextEncoder;
    /// <summary>How to reopen the image encoder, as the store's manifest records it.</summary>
    public EncoderSource? ImageEncoderSource => _store.Manifest.ImageEncoderSource;
    /// <summary>How to reopen the text encoder, as the store's manifest records it.</summary>
    public EncoderSource? TextEncoderSource => _store.Manifest.TextEncoderSource;

    /// <summary>The pairs' <c>label</c> column, one entry per row (null entries where a row has none), or null when the
    /// pairs file had no such column. Recipe selection scores zero-shot accuracy over these labels.</summary>
    public IReadOnlyList<string?>? Labels()
        => _store.Manifest.Input.ExtraColumns.Contains("label") ? _store.LoadPooled().Column("label") : null;

    /// <summary>Memory budget of decoded shards held at once (bytes, fp32 after decoding) when an order needs more
    /// than one group at a time; at least one shard is always kept. Default 1 GiB.</summary>
    public long ShardCacheBytes { get; init; } = 1L << 30;

    /// <summary>Shards whose rows are shuffled together (the shuffle buffer, in shards; &gt;= 1). Default 4: with the
    /// pipeline's default 4096-row shards, a 16,384-row buffer, ~59 MB of decoded fp32 for 512 + 384 wide pairs.</summary>
    public int ShuffleBufferShards { get; init; } = 4;

    /// <summary>Order of a shuffled epoch (default <see cref="StoreShuffle.Full"/>, a uniform permutation).</summary>
    public StoreShuffle Shuffle { get; init; } = StoreShuffle.Full;

    /// <summary>Batches assembled ahead of the consumer on a background thread (0 = none, all on the caller's
    /// thread). Default 4.</summary>
    public int PrefetchBatches { get; init; } = 4;

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
    /// <remarks>From the rows' metadata: rows whose image resolves to the same file, or whose caption text is the same
    /// (ordinal, trimmed), share a group, transitively (<see cref="PairGroups.FromImagesAndCaptions"/>). Computed on
    /// first use with one pass over the shards' metadata, then cached.</remarks>
    public IReadOnlyList<long>? GroupIds => _groupIds ??= ComputeGroups();

    /// <inheritdoc/>
    /// <remarks>SHA-256 over the manifest's store key hash and, per shard in index order, its index, row count and
    /// recorded SHA-256 (no shard is read): two stores with the same digest hold the same shard files.</remarks>
    public string? ContentDigest => _contentDigest ??= Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(
        _store.Manifest.KeyHash + "\n" + string.Concat(_store.Manifest.Shards.OrderBy(x => x.Index).Select(x => $"{x.Index}\t{x.Rows}\t{x.Sha256}\n")))));

    private string? _contentDigest;

    private long[]? _groupIds;

    private long[] ComputeGroups()
    {
        var images = new List<string>(checked((int)_store.Rows));
        var captions = new List<string?>(images.Capacity);
        var resolved = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int k = 0; k < _store.Shards.Count; k++)
            foreach (var m in _store.ReadShard(k, textPooled: false, meta: true).Meta!)
            {
                if (!resolved.TryGetValue(m.Image, out var path)) resolved[m.Image] = path = _store.ResolveImagePath(m.Image);
                images.Add(path);
                captions.Add(m.Caption);
            }
        return PairGroups.FromImagesAndCaptions(images, captions);
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentOutOfRangeException">batchSize &lt;= 0 or a row outside [0, Count).</exception>
    /// <exception cref="InvalidOperationException">Tokens requested from a store that holds none.</exception>
    public IEnumerable<AlignmentBatch> GetBatches(int batchSize, IReadOnlyList<long>? rows = null, int? shuffleSeed = null,
        bool withTokens = false, CancellationToken cancellationToken = default)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "Batch size must be positive.");
        if (withTokens && !_store.HasTokens)
            throw new InvalidOperationException($"Token features were requested but the store in {_store.Directory} holds pooled embeddings only (embed with --tokens).");
        Plan plan;
        if (shuffleSeed is int seed) plan = PlanShuffled(rows, seed);
        else if (rows is null) plan = PlanStoreOrder();
        else plan = ReusePlan(rows) ?? PlanGiven(rows);
        return PrefetchBatches > 0
            ? Prefetched(plan, batchSize, withTokens, cancellationToken)
            : Stream(plan, batchSize, withTokens, cancellationToken);
    }

    /// <summary>The epoch order of <paramref name="rows"/> per <see cref="Shuffle"/> (see the class remarks): a uniform
    /// permutation seeded with <paramref name="seed"/> (<see cref="Random.Shuffle{T}(T[])"/>, as in-memory sources do), or
    /// the shard-buffered shuffle, deterministic in (rows, seed, <see cref="ShuffleBufferShards"/>, the store's shard layout).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A row outside [0, Count).</exception>
    public long[] EpochOrder(IReadOnlyList<long> rows, int seed)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var plan = PlanShuffled(rows, seed);
        var order = new long[plan.Shard.Length];
        for (int i = 0; i < order.Length; i++) order[i] = _store.FirstRowOf(plan.Shard[i]) + plan.Local[i];
        _lastOrder = new LastOrder(order, plan);
        return order;
    }

    // The last order made by EpochOrder and its plan: when the trainer streams that order (or a tail of it, on resume)
    // the plan is reused instead of looking every row up again (saves 8 bytes per row and a pass).
    private LastOrder? _lastOrder; // one reference: swapped atomically

    private sealed record LastOrder(long[] Order, Plan Plan);

    private Plan? ReusePlan(IReadOnlyList<long> rows)
    {
        if (_lastOrder is not { } last) return null;
        (long[]? array, int offset, int count) = rows switch
        {
            long[] a => (a, 0, a.Length),
            ArraySegment<long> seg => (seg.Array, seg.Offset, seg.Count),
            _ => (null, 0, 0),
        };
        return ReferenceEquals(array, last.Order) ? last.Plan with { Start = offset, Count = count } : null;
    }

    /// <summary>A visiting order as parallel arrays: row i (Start &lt;= i &lt; Start + Count) is local row Local[i] of
    /// shard Shard[i].</summary>
    private sealed record Plan(int[] Shard, int[] Local)
    {
        public int Start { get; init; }
        public int Count { get; init; } = Shard.Length;
    }

    private Plan PlanStoreOrder()
    {
        int n = checked((int)_store.Rows);
        var shard = new int[n];
        var local = new int[n];
        int at = 0;
        for (int k = 0; k < _store.Shards.Count; k++)
            for (int r = 0; r < _store.Shards[k].Rows; r++) { shard[at] = k; local[at] = r; at++; }
        return new Plan(shard, local);
    }

    private Plan PlanGiven(IReadOnlyList<long> rows)
    {
        var shard = new int[rows.Count];
        var local = new int[rows.Count];
        for (int i = 0; i < rows.Count; i++)
        {
            int k = _store.ShardOf(rows[i]);
            shard[i] = k;
            local[i] = (int)(rows[i] - _store.FirstRowOf(k));
        }
        return new Plan(shard, local);
    }

    private Plan PlanShuffled(IReadOnlyList<long>? rows, int seed)
    {
        if (ShuffleBufferShards < 1)
            throw new ArgumentOutOfRangeException(nameof(ShuffleBufferShards), ShuffleBufferShards, "The shuffle buffer must hold at least one shard.");
        if (Shuffle == StoreShuffle.Full)
        {
            var order = rows is null ? new long[_store.Rows] : rows.ToArray();
            if (rows is null) for (long i = 0; i < order.Length; i++) order[i] = i;
            new Random(seed).Shuffle(order);
            return PlanGiven(order);
        }
        int shards = _store.Shards.Count;
        // Local rows per shard (a counting sort: one lookup per row, no per-row allocation).
        int[] count = new int[shards];
        int n = rows?.Count ?? checked((int)_store.Rows);
        if (rows is null) for (int k = 0; k < shards; k++) count[k] = _store.Shards[k].Rows;
        else foreach (long r in rows) count[_store.ShardOf(r)]++;
        int[] start = new int[shards + 1];
        for (int k = 0; k < shards; k++) start[k + 1] = start[k] + count[k];
        int[] locals = new int[n];
        if (rows is null) for (int k = 0; k < shards; k++) for (int r = 0; r < count[k]; r++) locals[start[k] + r] = r;
        else
        {
            int[] fill = (int[])start.Clone();
            foreach (long r in rows) { int k = _store.ShardOf(r); locals[fill[k]++] = (int)(r - _store.FirstRowOf(k)); }
        }

        var rng = new Random(seed);
        var shardOrder = Enumerable.Range(0, shards).Where(k => count[k] > 0).ToArray();
        rng.Shuffle(shardOrder);
        var outShard = new int[locals.Length];
        var outLocal = new int[locals.Length];
        int at = 0;
        for (int g = 0; g < shardOrder.Length; g += ShuffleBufferShards)
        {
            int groupStart = at;
            for (int j = g; j < Math.Min(shardOrder.Length, g + ShuffleBufferShards); j++)
            {
                int k = shardOrder[j];
                for (int p = start[k]; p < start[k + 1]; p++) { outShard[at] = k; outLocal[at] = locals[p]; at++; }
            }
            // Fisher-Yates over the group, both arrays together.
            for (int i = at - 1; i > groupStart; i--)
            {
                int j = groupStart + rng.Next(i - groupStart + 1);
                (outShard[i], outShard[j]) = (outShard[j], outShard[i]);
                (outLocal[i], outLocal[j]) = (outLocal[j], outLocal[i]);
            }
        }
        return new Plan(outShard, outLocal);
    }

    /// <summary>Runs <see cref="Stream"/> on a background thread, a bounded queue ahead of the consumer.</summary>
    private IEnumerable<AlignmentBatch> Prefetched(Plan plan, int batchSize, bool withTokens, CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var queue = new BlockingCollection<AlignmentBatch>(PrefetchBatches);
        ExceptionDispatchInfo? failure = null;
        var producer = new Thread(() =>
        {
            try
            {
                foreach (var b in Stream(plan, batchSize, withTokens, stop.Token)) queue.Add(b, stop.Token);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
            catch (Exception e) { failure = ExceptionDispatchInfo.Capture(e); }
            finally { queue.CompleteAdding(); }
        }) { IsBackground = true, Name = "MLNet.Align store prefetch" };
        producer.Start();
        try
        {
            foreach (var b in queue.GetConsumingEnumerable())
            {
                yield return b;
                ct.ThrowIfCancellationRequested();
            }
            failure?.Throw();
            ct.ThrowIfCancellationRequested();
        }
        finally
        {
            stop.Cancel(); // the consumer stopped early or failed: let the producer end
            producer.Join();
        }
    }

    /// <summary>Whether an order is served row by row in place: it touches more shards than the shuffle buffer holds and
    /// jumps between them (more than twice as many shard changes as shards). Depends only on the plan.</summary>
    private bool ReadsRows(Plan plan)
    {
        int end = plan.Start + plan.Count;
        var seen = new bool[_store.Shards.Count];
        int distinct = 0;
        long changes = 0;
        for (int i = plan.Start; i < end; i++)
        {
            int k = plan.Shard[i];
            if (!seen[k]) { seen[k] = true; distinct++; }
            if (i > plan.Start && k != plan.Shard[i - 1]) changes++;
        }
        return distinct > Math.Max(1, ShuffleBufferShards) && changes > 2L * distinct;
    }

    private IEnumerable<AlignmentBatch> Stream(Plan plan, int batchSize, bool withTokens, CancellationToken ct)
        => ReadsRows(plan) ? StreamRows(plan, batchSize, withTokens, ct) : StreamShards(plan, batchSize, withTokens, ct);

    private IEnumerable<AlignmentBatch> StreamRows(Plan plan, int batchSize, bool withTokens, CancellationToken ct)
    {
        using var reader = new StoreRowReader(_store, withTokens);
        var b = new Builder(batchSize, ImageDimension, TextDimension, withTokens);
        int end = plan.Start + plan.Count;
        for (int i = plan.Start; i < end; i++)
        {
            int k = plan.Shard[i], r = plan.Local[i];
            b.AddRow(reader, k, r, _store.FirstRowOf(k) + r);
            if (b.Count == batchSize) { yield return b.Emit(); ct.ThrowIfCancellationRequested(); }
        }
        if (b.Count > 0) yield return b.Emit();
    }

    private IEnumerable<AlignmentBatch> StreamShards(Plan plan, int batchSize, bool withTokens, CancellationToken ct)
    {
        int di = ImageDimension, dt = TextDimension;
        int end = plan.Start + plan.Count;
        // Last position that needs each shard: a shard is dropped right after it.
        var lastUse = new int[_store.Shards.Count];
        Array.Fill(lastUse, -1);
        for (int i = plan.Start; i < end; i++) lastUse[plan.Shard[i]] = i;
        var loaded = new Dictionary<int, (ShardData Data, long Bytes, long Touched)>();
        long held = 0;
        var b = new Builder(batchSize, di, dt, withTokens);
        int cur = -1;
        ShardData? data = null;
        long first = 0;
        for (int i = plan.Start; i < end; i++)
        {
            int k = plan.Shard[i];
            if (k != cur)
            {
                if (cur >= 0 && loaded.TryGetValue(cur, out var prev)) loaded[cur] = prev with { Touched = i };
                if (loaded.TryGetValue(k, out var hit)) data = hit.Data;
                else
                {
                    ct.ThrowIfCancellationRequested();
                    long bytes = EstimateBytes(_store.Shards[k].Rows, withTokens);
                    while (loaded.Count > 0 && held + bytes > ShardCacheBytes)
                    {
                        var victim = loaded.MinBy(e => e.Value.Touched);
                        held -= victim.Value.Bytes;
                        loaded.Remove(victim.Key);
                    }
                    data = _store.ReadShard(k, textPooled: true, imageTokens: withTokens, textTokens: withTokens);
                    loaded[k] = (data, bytes, i);
                    held += bytes;
                }
                cur = k;
                first = _store.FirstRowOf(k);
            }
            int r = plan.Local[i];
            b.Add(data!, r, first + r);
            if (lastUse[k] == i && loaded.Remove(k, out var done)) { held -= done.Bytes; cur = -1; }
            if (b.Count == batchSize) { yield return b.Emit(); ct.ThrowIfCancellationRequested(); }
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

        public void AddRow(StoreRowReader reader, int shard, int row, long id)
        {
            int i = _ids.Count;
            reader.ReadPooled(shard, row, _image.AsSpan(i * di, di), _text.AsSpan(i * dt, dt));
            if (withTokens)
            {
                var (image, text) = reader.ReadTokens(shard, row);
                _imageTok.Add(image);
                _textTok.Add(text);
            }
            _ids.Add(id);
        }

        /// <summary>Hands the filled buffers to a batch (no copy) and starts new ones.</summary>
        public AlignmentBatch Emit()
        {
            int n = _ids.Count;
            var image = n == capacity ? _image : _image.AsSpan(0, n * di).ToArray();
            var text = n == capacity ? _text : _text.AsSpan(0, n * dt).ToArray();
            var batch = new AlignmentBatch(_ids.ToArray(), new EmbeddingMatrix(image, n, di), new EmbeddingMatrix(text, n, dt),
                withTokens ? Pad(_imageTok) : null, withTokens ? Pad(_textTok) : null);
            _ids.Clear(); _imageTok.Clear(); _textTok.Clear();
            _image = new float[capacity * di]; _text = new float[capacity * dt];
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
