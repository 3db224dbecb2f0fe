using System.Runtime.CompilerServices;
using Cloud.Unum.USearch;

namespace MLNet.Align.Search;

/// <summary>
/// Internal hooks for `mlnet-align bench --suites search` and tests: the embedded backend built straight from float
/// arrays (no catalog, no images), with the graph built the way <see cref="Sync"/> builds it (<see cref="AddAll"/> in id
/// order, same options), so that recall, latency and build rate are those of the shipped search path.
/// </summary>
internal sealed partial class EmbeddedVectors
{
    private EmbeddedVectors(long[] ids, string[] paths, long[] mtimes, long[] sizes, float[] vectors, int dim,
        Dictionary<long, int> rowOfId, Dictionary<string, int> rowOfPath, USearchIndex? ann, int expansion,
        (IntPtr Handle, StrongBox<int> Expansion)? native = null)
    {
        Dimension = dim;
        _ids = ids; _paths = paths; _mtimes = mtimes; _sizes = sizes; _vectors = vectors;
        _rowOfId = rowOfId; _rowOfPath = rowOfPath; _ann = ann; _expansion = expansion;
        (_handle, _graphExpansion) = native ?? NativeOf(ann);
    }

    /// <summary>Row-major unit vectors [n x dim] as items 1..n (paths "/bench/{id}", the given last-write times), plus,
    /// when <paramref name="buildAnn"/>, an HNSW graph built as <see cref="Sync"/> builds one. The build time (graph
    /// only) is returned in <paramref name="buildSeconds"/>.</summary>
    internal static EmbeddedVectors FromArrays(float[] vectors, int dim, long[] mtimesMs, ImageIndexOptions options, bool buildAnn, out double buildSeconds)
    {
        int n = mtimesMs.Length;
        if ((long)n * dim != vectors.Length) throw new ArgumentException($"{vectors.Length} values are not {n} rows of {dim}.");
        var ids = new long[n]; var paths = new string[n]; var sizes = new long[n];
        var rowOfId = new Dictionary<long, int>(n); var rowOfPath = new Dictionary<string, int>(n, StringComparer.Ordinal);
        for (int i = 0; i < n; i++)
        {
            ids[i] = i + 1; paths[i] = $"/bench/{i + 1}"; sizes[i] = 1;
            rowOfId[ids[i]] = i; rowOfPath[paths[i]] = i;
        }
        USearchIndex? ann = null;
        buildSeconds = 0;
        if (buildAnn)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            ann = New(dim, options);
            // As Sync: one float[dim] per item (as the catalog returns them), added in chunks by AddAll.
            AddAll(ann, Enumerable.Range(0, n).Select(i => (ids[i], vectors.AsSpan((int)((long)i * dim), dim).ToArray())));
            buildSeconds = clock.Elapsed.TotalSeconds;
        }
        return new EmbeddedVectors(ids, paths, (long[])mtimesMs.Clone(), sizes, vectors, dim, rowOfId, rowOfPath, ann, options.ExpansionSearch);
    }

    /// <summary>A view sharing this instance's rows and graph that searches it at ef = <paramref name="expansion"/>
    /// (set on the shared graph when it differs; do not search two views of other ef at once). Dispose only the
    /// original.</summary>
    internal EmbeddedVectors WithExpansion(int expansion)
        => new(_ids, _paths, _mtimes, _sizes, _vectors, Dimension, _rowOfId, _rowOfPath, _ann, expansion, (_handle, _graphExpansion));

    /// <summary>What an update that deleted <paramref name="rows"/> leaves: those ids tombstoned in the (shared) graph,
    /// as <see cref="Sync"/> does below the compaction fraction, and the rows dropped as a reload from the catalog drops
    /// them. This instance must not be searched afterwards; dispose only the result.</summary>
    internal EmbeddedVectors WithoutRows(IReadOnlySet<int> rows)
    {
        int n = Count - rows.Count(r => r >= 0 && r < Count);
        var ids = new long[n]; var paths = new string[n]; var mtimes = new long[n]; var sizes = new long[n];
        var vectors = new float[(long)n * Dimension];
        var rowOfId = new Dictionary<long, int>(n); var rowOfPath = new Dictionary<string, int>(n, StringComparer.Ordinal);
        for (int i = 0, j = 0; i < Count; i++)
        {
            if (rows.Contains(i)) { _ann?.Remove((ulong)_ids[i]); continue; }
            ids[j] = _ids[i]; paths[j] = _paths[i]; mtimes[j] = _mtimes[i]; sizes[j] = _sizes[i];
            Array.Copy(_vectors, (long)i * Dimension, vectors, (long)j * Dimension, Dimension);
            rowOfId[ids[j]] = j; rowOfPath[paths[j]] = j;
            j++;
        }
        return new EmbeddedVectors(ids, paths, mtimes, sizes, vectors, Dimension, rowOfId, rowOfPath, _ann, _expansion, (_handle, _graphExpansion));
    }

    /// <summary>ef_search the native graph is set to now (-1 without a graph).</summary>
    internal int GraphExpansion => _handle == IntPtr.Zero ? -1 : USearchNative.ExpansionSearch(_handle);

    /// <summary>The id of a row (items of <see cref="FromArrays"/> have id = row + 1 until rows are dropped).</summary>
    internal long IdOf(int row) => _ids[row];

    /// <summary>The graph alone: the <paramref name="count"/> nearest keys by the graph's own (quantised) distance, no
    /// exact re-scoring, no filter.</summary>
    internal int AnnSearch(float[] query, int count, out ulong[] keys)
    {
        if (_ann is null) throw new InvalidOperationException("No HNSW graph.");
        return _ann.Search(query, count, out keys, out _);
    }

    /// <summary>Writes the graph file as <see cref="Sync"/> does and returns its size in bytes.</summary>
    internal long SaveAnn(string path)
    {
        if (_ann is null) throw new InvalidOperationException("No HNSW graph.");
        _ann.Save(path);
        return new FileInfo(path).Length;
    }
}
