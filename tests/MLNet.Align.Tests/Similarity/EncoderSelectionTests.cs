using System.Text.Json;
using MLNet.Align.Embeddings;
using MLNet.Align.Similarity;
using static MLNet.Align.Tests.Evaluation.TestMatrices;

namespace MLNet.Align.Tests.Similarity;

public class EncoderSelectionTests
{
    private static IEnumerable<JsonElement> ReferenceCases()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "fixtures", "similarity", "cka-reference.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(e => e.Clone()).ToArray();
    }

    private static EmbeddingMatrix Read(JsonElement c, string name)
    {
        var data = c.GetProperty(name).EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();
        return new EmbeddingMatrix(data, c.GetProperty("n").GetInt32(), c.GetProperty(name + "_cols").GetInt32());
    }

    [Fact]
    public void EveryMetricEqualsTheNumpyReferenceTo1e6()
    {
        var cases = ReferenceCases().ToArray();
        Assert.Equal(3, cases.Length);
        foreach (var c in cases)
        {
            var x = Read(c, "x"); var y = Read(c, "y");
            string name = c.GetProperty("name").GetString()!;
            void Eq(string key, double actual) => Assert.True(Math.Abs(c.GetProperty(key).GetDouble() - actual) <= 1e-6,
                $"{name} {key}: numpy {c.GetProperty(key).GetDouble():R}, C# {actual:R}");
            Eq("linear_cka", Cka.Linear(x, y));
            Eq("linear_cka_unbiased", Cka.LinearUnbiased(x, y));
            foreach (var f in new[] { 0.5, 1.0, 2.0 })
            {
                string fs = f.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);
                Eq($"rbf_cka_{fs}", Cka.Rbf(x, y, f));
                Eq($"rbf_cka_unbiased_{fs}", Cka.RbfUnbiased(x, y, f));
            }
            Eq("mutual_knn_5", MutualKnn.Score(x, y, 5));

            // The selection report computes the same values through its Gram-matrix path.
            foreach (bool unbiased in new[] { false, true })
            {
                var r = EncoderSelection.Rank(new Dictionary<string, EmbeddingMatrix> { ["x"] = x }, new Dictionary<string, EmbeddingMatrix> { ["y"] = y },
                    new EncoderSelectionOptions { Bootstrap = 0, UnbiasedHsic = unbiased, KnnK = 5, SigmaFraction = 0.5 });
                Eq(unbiased ? "linear_cka_unbiased" : "linear_cka", r.Best.LinearCka.Value);
                Eq(unbiased ? "rbf_cka_unbiased_0.5" : "rbf_cka_0.5", r.Best.RbfCka.Value);
                Eq("mutual_knn_5", r.Best.MutualKnn.Value);
            }
        }
    }

    [Fact]
    public void SelfSimilarityIsOneAndInvariantToOrthogonalMapsAndIsotropicScaling()
    {
        var x = Gaussian(80, 10, 11);
        var y = Gaussian(80, 7, 12);
        for (int i = 0; i < y.Data.Length; i++) y.Data[i] += 0.9f * x.Data[(i / 7) * 10 + i % 7];
        var xq = Scale(Times(x, RandomOrthogonal(10, 13), 10), 0.25f);
        foreach (bool unbiased in new[] { false, true })
        {
            var o = new EncoderSelectionOptions { Bootstrap = 0, UnbiasedHsic = unbiased, ShuffledControl = false };
            var self = EncoderSelection.Rank(new Dictionary<string, EmbeddingMatrix> { ["x"] = x }, new Dictionary<string, EmbeddingMatrix> { ["x"] = x }, o).Best;
            Assert.Equal(1.0, self.LinearCka.Value, 1e-9);
            Assert.Equal(1.0, self.RbfCka.Value, 1e-9);
            Assert.Equal(1.0, self.MutualKnn.Value, 12);
            var r = EncoderSelection.Rank(new Dictionary<string, EmbeddingMatrix> { ["x"] = x, ["xq"] = xq }, new Dictionary<string, EmbeddingMatrix> { ["y"] = y }, o);
            var a = r.Pairs.Single(p => p.Image == "x"); var b = r.Pairs.Single(p => p.Image == "xq");
            Assert.InRange(a.LinearCka.Value, 0.2, 0.99);
            Assert.Equal(a.LinearCka.Value, b.LinearCka.Value, 1e-5);
            Assert.Equal(a.RbfCka.Value, b.RbfCka.Value, 1e-5); // the bandwidth scales with the median distance
            Assert.Equal(a.MutualKnn.Value, b.MutualKnn.Value, 12);
        }
    }

    [Fact]
    public void IntervalsAreSeededContainTheEstimateAndTheShuffledControlIsNearChance()
    {
        var x = Gaussian(120, 8, 21);
        var y = Gaussian(120, 6, 22);
        for (int i = 0; i < y.Data.Length; i++) y.Data[i] += 1.2f * x.Data[(i / 6) * 8 + i % 6];
        var images = new Dictionary<string, EmbeddingMatrix> { ["x"] = x };
        var texts = new Dictionary<string, EmbeddingMatrix> { ["y"] = y, ["noise"] = Gaussian(120, 6, 23) };
        var o = new EncoderSelectionOptions { Bootstrap = 60, Seed = 5 };
        var r1 = EncoderSelection.Rank(images, texts, o);
        var r2 = EncoderSelection.Rank(images, texts, o);
        Assert.Equal(JsonSerializer.Serialize(r1), JsonSerializer.Serialize(r2));
        var r3 = EncoderSelection.Rank(images, texts, o with { Seed = 6 });
        Assert.NotEqual(r1.Best.LinearCka.Low, r3.Best.LinearCka.Low);
        Assert.Equal(r1.Best.LinearCka.Value, r3.Best.LinearCka.Value);

        var best = r1.Best;
        Assert.Equal("y", best.Text);
        foreach (var e in new[] { best.LinearCka, best.RbfCka, best.MutualKnn })
        {
            Assert.NotNull(e.Low);
            Assert.True(e.Low < e.High, $"{e.Low} < {e.High}");
            Assert.InRange(e.Value, e.Low!.Value, e.High!.Value); // bias-corrected: the estimate lies inside
            Assert.NotNull(e.BootstrapBias);
            Assert.True(e.Shuffled < e.Low, $"shuffled {e.Shuffled} should fall below the interval [{e.Low}, {e.High}]");
        }
        var noise = r1.Pairs.Single(p => p.Text == "noise");
        Assert.InRange(noise.LinearCka.Value, 0, 0.15); // biased CKA of independent data ~ d/n
        Assert.True(noise.LinearCka.High < best.LinearCka.Low);
        Assert.True(best.LinearCka.BootstrapBias > 0, $"with-replacement resamples repeat items, which inflates CKA: bias {best.LinearCka.BootstrapBias}");
    }

    [Fact]
    public void BadInputIsNamed()
    {
        var ex = Assert.Throws<ArgumentException>(() => EncoderSelection.Rank(
            new Dictionary<string, EmbeddingMatrix> { ["img"] = Gaussian(10, 3, 1) },
            new Dictionary<string, EmbeddingMatrix> { ["txt"] = Gaussian(9, 3, 2) }));
        Assert.Contains("'txt' has 9 probe rows, expected 10", ex.Message);
        Assert.Throws<ArgumentException>(() => EncoderSelection.Rank(
            new Dictionary<string, EmbeddingMatrix> { ["img"] = Gaussian(10, 3, 1) },
            new Dictionary<string, EmbeddingMatrix> { ["txt"] = Gaussian(10, 3, 2) }, new EncoderSelectionOptions { SigmaFraction = 0 }));
    }

    [Fact]
    public void PartitionFeaturesMergeBitIdenticallyToTheWholeSet()
    {
        var keys = Enumerable.Range(0, 40).Select(i => $"img/{i:D3}.png").ToArray();
        var img = Gaussian(40, 5, 31); var txt = Gaussian(40, 3, 32);
        var whole = new SelectionFeatures("sha", null, keys, [KeyValuePair.Create("i", img)], [KeyValuePair.Create("t", txt)]);
        var dir = Path.Combine(Path.GetTempPath(), "mlnet-align-selfeat-" + Environment.ProcessId);
        Directory.CreateDirectory(dir);
        try
        {
            var parts = new List<SelectionFeatures>();
            for (int p = 3; p >= 0; p--) // out of order on purpose
            {
                var part = new ShardPartition(p, 4);
                var rows = Enumerable.Range(0, 40).Where(i => part.Contains(keys[i])).ToArray();
                var f = new SelectionFeatures("sha", part.ToString(), rows.Select(i => keys[i]).ToArray(),
                    [KeyValuePair.Create("i", img.SelectRows(rows))], [KeyValuePair.Create("t", txt.SelectRows(rows))]);
                var file = Path.Combine(dir, $"p{p}.bin");
                f.Save(file);
                parts.Add(SelectionFeatures.Load(file));
            }
            Assert.True(parts.All(p => p.Keys.Count < 40));
            var merged = SelectionFeatures.Merge(parts);
            Assert.Equal(keys, merged.Keys);
            Assert.Equal(img.Data, merged.Images[0].Value.Data);
            var o = new EncoderSelectionOptions { Bootstrap = 20 };
            Assert.Equal(JsonSerializer.Serialize(whole.Rank(o)), JsonSerializer.Serialize(merged.Rank(o)));

            var ex = Assert.Throws<ArgumentException>(() => SelectionFeatures.Merge(parts.Take(3).ToList()));
            Assert.Contains("Missing partition(s) 0/4", ex.Message);
            File.WriteAllBytes(Path.Combine(dir, "bad.bin"), File.ReadAllBytes(Path.Combine(dir, "p0.bin"))[..^4]);
            Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => SelectionFeatures.Load(Path.Combine(dir, "bad.bin"))).Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void ResNetLayerTapsMatchThePackagedPooledOutput()
    {
        using var layers = ImageLayerCandidates.ResNet18(4);
        var paths = FixtureFeatures.ImagePaths.Take(6).ToArray();
        var byLayer = layers.Encode(paths);
        Assert.Equal(new[] { 128, 256, 512 }, layers.Layers.Select(l => byLayer[l.Name].Columns));
        var pooled = FixtureFeatures.Images.Pooled.SelectRows(Enumerable.Range(0, 6).ToArray());
        Assert.True(Vectors.MaxAbsDiff(pooled.Data, byLayer["resnet18.layer4"].Data) < 1e-4); // GAP of layer4 = the model's own pool
        Assert.Equal(3, layers.Identities.Select(i => i.Sha256).Distinct().Count());
        Assert.True(byLayer["resnet18.layer2"].Data.All(v => v >= 0)); // post-ReLU
    }
}
