using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Cloud.Unum.USearch;

namespace MLNet.Align.Search;

/// <summary>What the approximate-index file was built with and up to which catalog generation (vectors.json).</summary>
internal sealed record AnnState(long Generation, string Quantization, int Connectivity, int ExpansionAdd, int Dimension,
    long BuiltCount, long RemovedSinceBuild, string? Metric = null);

/// <summary>
/// The embedded search backend: the catalog's aligned vectors in memory (fp32, for exact search, filters and re-scoring)
/// plus, from <see cref="ImageIndexOptions.ExactBelow"/> items on, a USearch HNSW graph on disk (vectors.usearch) kept
/// in step with the catalog generation by generation: new ids added, removed ids tombstoned, a rebuild when tombstones
/// pass <see cref="ImageIndexOptions.CompactFraction"/>. The graph file is derived data: a missing or stale one is
/// rebuilt from the catalog, never trusted.
/// </summary>
internal sealed partial class EmbeddedVectors : IDisposable
{
    public const string AnnFile = "vectors.usearch";
    public const string AnnStateFile = "vectors.json";

    private readonly long[] _ids;
    private readonly string[] _paths;
    private readonly long[] _mtimes;
    private readonly long[] _sizes;
    private readonly float[] _vectors;
    private readonly Dictionary<long, int> _rowOfId;
    private readonly Dictionary<string, int> _rowOfPath;
    private readonly USearchIndex? _ann;
    private readonly int _expansion;
    // The graph's native handle (zero without a graph) and the ef_search it is set to, shared by the views
    // of one graph (the bench's WithExpansion): a view with another ef sets it before it searches.
    private readonly IntPtr _handle;
    private readonly StrongBox<int> _graphExpansion;

    private EmbeddedVectors(List<(CatalogEntry Entry, float[] Aligned)> rows, int dim, USearchIndex? ann, int expansion)
    {
        Dimension = dim;
        int n = rows.Count;
        _ids = new long[n]; _paths = new string[n]; _mtimes = new long[n]; _sizes = new long[n];
        _vectors = new float[checked((long)n * dim)];
        _rowOfId = new(n); _rowOfPath = new(n, StringComparer.Ordinal);
        for (int i = 0; i < n; i++)
        {
            var (e, v) = rows[i];
            if (v.Length != dim) throw new InvalidDataException($"Catalog item {e.Id} ({e.Path}) has an aligned vector of {v.Length} values, expected {dim}.");
            _ids[i] = e.Id; _paths[i] = e.Path; _mtimes[i] = e.MtimeMs; _sizes[i] = e.Size;
            v.CopyTo(_vectors, (long)i * dim);
            _rowOfId[e.Id] = i; _rowOfPath[e.Path] = i;
        }
        _ann = ann;
        _expansion = expansion;
        (_handle, _graphExpansion) = NativeOf(ann);
    }

    private static (IntPtr Handle, StrongBox<int> Expansion) NativeOf(USearchIndex? ann)
    {
        if (ann is null) return (IntPtr.Zero, new StrongBox<int>(0));
        var handle = USearchNative.HandleOf(ann);
        if (handle == IntPtr.Zero)
            throw new InvalidOperationException("This Cloud.Unum.USearch version does not keep its native index handle where MLNet.Align.Search reads it; use the version MLNet.Align.Search was built with.");
        return (handle, new StrongBox<int>(USearchNative.ExpansionSearch(handle)));
    }

    public int Dimension { get; }
    public int Count => _ids.Length;
    /// <summary>True when queries can use the HNSW graph.</summary>
    public bool HasAnn => _ann != null;

    /// <summary>Loads the catalog's vectors and, when present and current, the graph.</summary>
    public static EmbeddedVectors Load(IndexCatalog catalog, string directory, int dim, ImageIndexOptions options)
    {
        var rows = catalog.Aligned().ToList();
        USearchIndex? ann = null;
        var state = ReadState(directory);
        string file = Path.Combine(directory, AnnFile);
        if (state != null && state.Generation == catalog.Generation && File.Exists(file) && rows.Count >= options.ExactBelow)
        {
            try { ann = new USearchIndex(file, view: false); }
            catch (USearchException) { ann = null; } // derived data: a damaged graph means exact search until the next update
        }
        return new EmbeddedVectors(rows, dim, ann, options.ExpansionSearch);
    }

    public static AnnState? ReadState(string directory)
    {
        string p = Path.Combine(directory, AnnStateFile);
        if (!File.Exists(p)) return null;
        try { return JsonSerializer.Deserialize<AnnState>(File.ReadAllText(p)); }
        catch (JsonException) { return null; }
    }

    /// <summary>Brings the graph file up to the catalog's generation. Returns what it did, for the summary line.</summary>
    public static string Sync(IndexCatalog catalog, string directory, int dim, ImageIndexOptions options, bool forceRebuild = false)
    {
        long gen = catalog.Generation;
        long n = catalog.Count();
        string file = Path.Combine(directory, AnnFile), stateFile = Path.Combine(directory, AnnStateFile);
        if (n < options.ExactBelow)
        {
            File.Delete(stateFile); File.Delete(file);
            return $"exact search ({n:N0} items < {options.ExactBelow:N0})";
        }
        var state = ReadState(directory);
        string quant = options.Quantization.ToString();
        // A graph built with another metric (before 2026-12: cosine) is rebuilt, as one of another quantisation is.
        bool compatible = state != null && File.Exists(file) && state.Quantization == quant && state.Connectivity == options.Connectivity
            && state.ExpansionAdd == options.ExpansionAdd && state.Dimension == dim && state.Metric == GraphMetric.ToString();
        if (compatible && state!.Generation == gen && !forceRebuild) return $"HNSW up to date ({n:N0} items)";
        List<long> removed = compatible ? catalog.RemovedAfter(state!.Generation) : [];
        bool rebuild = forceRebuild || !compatible || state!.RemovedSinceBuild + removed.Count > options.CompactFraction * Math.Max(1, state.BuiltCount);
        USearchIndex index;
        string what;
        long removedSinceBuild, builtCount;
        if (rebuild)
        {
            index = New(dim, options);
            long added = 0;
            added = AddAll(index, catalog.Aligned().Select(x => (x.Entry.Id, x.Aligned)));
            (removedSinceBuild, builtCount) = (0, added);
            what = $"HNSW built ({added:N0} items, {quant})";
        }
        else
        {
            index = new USearchIndex(file, view: false);
            long added = 0, tombstoned = 0;
            // Contains: ids added by a run killed between the graph and its state file are not added twice.
            added = AddAll(index, catalog.Aligned(state!.Generation).Where(x => !index.Contains((ulong)x.Entry.Id)).Select(x => (x.Entry.Id, x.Aligned)));
            foreach (var id in removed) if (index.Contains((ulong)id)) { index.Remove((ulong)id); tombstoned++; }
            (removedSinceBuild, builtCount) = (state.RemovedSinceBuild + tombstoned, state.BuiltCount + added);
            what = $"HNSW updated (+{added:N0}, -{tombstoned:N0} tombstoned)";
        }
        using (index)
        {
            string tmp = AtomicFile.TempPathFor(file);
            try
            {
                index.Save(tmp);
                File.Move(tmp, file, overwrite: true);
            }
            finally { if (File.Exists(tmp)) File.Delete(tmp); }
        }
        // The state file last: a run killed before it leaves an older generation, and the next sync redoes (idempotently) the rest.
        var newState = new AnnState(gen, quant, options.Connectivity, options.ExpansionAdd, dim, builtCount, removedSinceBuild, GraphMetric.ToString());
        AtomicFile.WriteAllText(stateFile, JsonSerializer.Serialize(newState));
        return what;
    }

    /// <summary>Adds items in chunks: the binding reserves capacity once per call, where one Add per item grows the
    /// graph's capacity by one item each time (a reallocation per item; the 100k build ran at 0.66x hnswlib).</summary>
    internal static long AddAll(USearchIndex index, IEnumerable<(long Id, float[] Vector)> items, int chunk = 4096)
    {
        long added = 0;
        foreach (var part in items.Chunk(chunk))
        {
            index.Add(part.Select(p => (ulong)p.Id).ToArray(), part.Select(p => p.Vector).ToArray());
            added += part.Length;
        }
        return added;
    }

    /// <summary>Inner product: every stored and query vector is unit length (aligned embeddings are L2-normalised, a
    /// query is normalised after weighting), so it ranks as cosine does without the two norms cosine recomputes per
    /// distance (at 100k x 384 fp16 the graph walk ran about 1.3x faster than with cosine, same recall).</summary>
    internal const MetricKind GraphMetric = MetricKind.Ip;

    private static USearchIndex New(int dim, ImageIndexOptions o) => new(GraphMetric, o.Quantization switch
    {
        VectorQuantization.Float32 => ScalarKind.Float32,
        VectorQuantization.Int8 => ScalarKind.Int8,
        _ => ScalarKind.Float16,
    }, (ulong)dim, (ulong)o.Connectivity, (ulong)o.ExpansionAdd, (ulong)o.ExpansionSearch);

    public string? PathOf(long id) => _rowOfId.TryGetValue(id, out var r) ? _paths[r] : null;
    public int RowOfPath(string path) => _rowOfPath.TryGetValue(path, out var r) ? r : -1;
    public ReadOnlySpan<float> Vector(int row) => _vectors.AsSpan(row * Dimension, Dimension);
    public SearchHit Hit(int row, float score)
        => new(_ids[row], _paths[row], score, DateTimeOffset.FromUnixTimeMilliseconds(_mtimes[row]), _sizes[row]);

    /// <summary>The best <paramref name="k"/> rows for a unit query, with exact fp32 cosine scores. With a filter, rows
    /// that fail it never count; the graph is asked for more candidates until k pass, and an exact scan of the passing
    /// rows answers when the filter is selective or the graph runs dry, so k hits come back whenever k items match.</summary>
    public List<(int Row, float Score)> Search(float[] query, int k, Func<int, bool>? filter, bool exact)
    {
        int n = Count;
        if (n == 0) return [];
        int matching = n;
        if (filter != null) { matching = 0; for (int i = 0; i < n; i++) if (filter(i)) matching++; }
        k = Math.Min(k, matching);
        if (k == 0) return [];
        // A filter passing under 2% of the items: scanning them is cheaper than walking the graph past the rest.
        if (exact || _ann == null || matching < 0.02 * n) return Exact(query, k, filter);
        // The graph's candidates come best first by its own (fp16/int8) distance, within ~1e-3 of the fp32 score: the
        // first RescoreFactor x k passing ones hold the exact top k, so only those are asked for and re-scored in fp32
        // (the walk itself keeps ef = _expansion candidates; below ef 40, as many as ef, since asking for more widens the
        // walk to that count). A filter widens the request by the share it rejects.
        int rescore = Math.Max(RescoreMinimum, RescoreFactor * k);
        int want = filter == null ? Math.Min(n, Math.Min(rescore, Math.Max(k, _expansion))) : (int)Math.Min(n, Math.Ceiling(Math.Max(k, _expansion) * (double)n / matching * 1.5));
        while (true)
        {
            var keys = ArrayPool<ulong>.Shared.Rent(want);
            var distances = ArrayPool<float>.Shared.Rent(want);
            try
            {
                int found = NativeSearch(query, keys.AsSpan(0, want), distances.AsSpan(0, want));
                var hits = new List<(int Row, float Score)>(Math.Min(found, rescore));
                for (int i = 0; i < found && hits.Count < rescore; i++)
                {
                    if (!_rowOfId.TryGetValue((long)keys[i], out int row)) continue; // a tombstone's key (cannot happen) or a stale graph
                    if (filter == null || filter(row)) hits.Add((row, Score(query, row)));
                }
                if (hits.Count >= k) return TopK(hits, k);
            }
            finally
            {
                ArrayPool<ulong>.Shared.Return(keys);
                ArrayPool<float>.Shared.Return(distances);
            }
            if (want >= n) return Exact(query, k, filter);
            want = (int)Math.Min(n, (long)want * 4);
        }
    }

    /// <summary>The graph's nearest keys.Length keys at ef = this view's expansion (the shared native index is set to
    /// it first when another view changed it).</summary>
    private int NativeSearch(float[] query, Span<ulong> keys, Span<float> distances)
    {
        if (Volatile.Read(ref _graphExpansion.Value) != _expansion)
            lock (_graphExpansion)
            {
                USearchNative.SetExpansionSearch(_handle, _expansion);
                Volatile.Write(ref _graphExpansion.Value, _expansion);
            }
        return USearchNative.Search(_handle, query, keys, distances);
    }

    /// <summary>At least this many of the graph's best passing candidates are re-scored in fp32 (and
    /// <see cref="RescoreFactor"/> x k when that is more).</summary>
    internal const int RescoreMinimum = 40;
    internal const int RescoreFactor = 4;

    private float Score(float[] q, int row) => TensorPrimitives.Dot(q, Vector(row));

    private List<(int Row, float Score)> Exact(float[] q, int k, Func<int, bool>? filter)
    {
        var heap = new PriorityQueue<int, float>(k + 1);
        for (int i = 0; i < Count; i++)
        {
            if (filter != null && !filter(i)) continue;
            float s = Score(q, i);
            if (heap.Count < k) heap.Enqueue(i, s);
            else if (heap.TryPeek(out _, out float worst) && s > worst) heap.EnqueueDequeue(i, s);
        }
        var list = new List<(int Row, float Score)>(heap.Count);
        while (heap.TryDequeue(out int row, out float s)) list.Add((row, s));
        list.Reverse();
        return list;
    }

    private static List<(int Row, float Score)> TopK(List<(int Row, float Score)> hits, int k)
    {
        hits.Sort((a, b) => b.Score != a.Score ? b.Score.CompareTo(a.Score) : a.Row.CompareTo(b.Row));
        return hits.Count > k ? hits.GetRange(0, k) : hits;
    }

    public bool InFolder(int row, string folder) => _paths[row].StartsWith(folder, StringComparison.Ordinal);
    public long MtimeMs(int row) => _mtimes[row];

    public void Dispose() => _ann?.Dispose();
}
