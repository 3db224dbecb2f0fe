using Cloud.Unum.USearch;
using MLNet.Align.Search;

namespace MLNet.Align.Tests.Search;

/// <summary>The two USearch C calls the binding lacks (ef_search on a loaded graph, search into our buffers): the
/// handle is found in this package version, a loaded graph searches at the index's ef rather than the library's 64, and
/// graph answers equal exact search.</summary>
public class USearchNativeTests
{
    private const int N = 3000, Dim = 48;

    private static float[] UnitRows(int n, int dim, int seed)
    {
        var rng = new Random(seed);
        var v = new float[n * dim];
        for (int i = 0; i < n; i++)
        {
            var row = v.AsSpan(i * dim, dim);
            for (int j = 0; j < dim; j++) row[j] = (float)(rng.NextDouble() * 2 - 1);
            float norm = MathF.Sqrt(System.Numerics.Tensors.TensorPrimitives.Dot(row, row));
            for (int j = 0; j < dim; j++) row[j] /= norm;
        }
        return v;
    }

    [Fact]
    public void The_binding_hands_over_its_native_handle()
    {
        using var index = new USearchIndex(MetricKind.Ip, ScalarKind.Float16, Dim, 16, 128, 77);
        var handle = USearchNative.HandleOf(index);
        Assert.NotEqual(IntPtr.Zero, handle);
        Assert.Equal(77, USearchNative.ExpansionSearch(handle));
        USearchNative.SetExpansionSearch(handle, 300);
        Assert.Equal(300, USearchNative.ExpansionSearch(handle));
    }

    [Fact]
    public void A_loaded_graph_searches_at_the_index_ef_and_agrees_with_exact_search()
    {
        var rows = UnitRows(N, Dim, seed: 11);
        var options = new ImageIndexOptions { ExpansionSearch = 512 };
        using var built = EmbeddedVectors.FromArrays(rows, Dim, new long[N], options, buildAnn: true, out _);
        string file = Path.Combine(Path.GetTempPath(), $"usearch-native-{Guid.NewGuid():N}.usearch");
        try
        {
            built.SaveAnn(file);
            using var loaded = new USearchIndex(file, view: false);
            var handle = USearchNative.HandleOf(loaded);
            Assert.Equal(64, USearchNative.ExpansionSearch(handle)); // the library default a loaded graph starts at

            var queries = UnitRows(40, Dim, seed: 12);
            int agree = 0;
            for (int q = 0; q < 40; q++)
            {
                var query = queries.AsSpan(q * Dim, Dim).ToArray();
                var graph = built.Search(query, 10, filter: null, exact: false).Select(h => h.Row).ToHashSet();
                var exact = built.Search(query, 10, filter: null, exact: true).Select(h => h.Row);
                agree += exact.Count(graph.Contains);
            }
            Assert.True(agree >= 396, $"{agree} of 400 exact top-10 rows found through the graph at ef 512");
            Assert.Equal(512, built.GraphExpansion);

            // A view with another ef sets the shared graph to its ef before it searches, and back.
            var narrow = built.WithExpansion(16);
            narrow.Search(queries.AsSpan(0, Dim).ToArray(), 10, null, exact: false);
            Assert.Equal(16, built.GraphExpansion);
            built.Search(queries.AsSpan(0, Dim).ToArray(), 10, null, exact: false);
            Assert.Equal(512, built.GraphExpansion);

            var keys = new ulong[5]; var distances = new float[5];
            Assert.Equal(5, USearchNative.Search(handle, queries.AsSpan(0, Dim), keys, distances));
            Assert.True(distances.Zip(distances.Skip(1)).All(p => p.First <= p.Second), "best first by distance");
            Assert.Throws<ArgumentException>(() => USearchNative.Search(handle, queries.AsSpan(0, Dim), keys, new float[4]));
        }
        finally { File.Delete(file); }
    }
}
