using System.Diagnostics;
using System.Text.Json;
using MLNet.Align.Embeddings;
using MLNet.Align.Evaluation;
using MLNet.Align.Similarity;
using MLNet.Align.Tests.Evaluation;
using Xunit.Abstractions;
using static MLNet.Align.Tests.Evaluation.TestMatrices;
using MLNet.Align.Charts;

namespace MLNet.Align.Tests.Similarity;

public class EncoderPairRankerTests(ITestOutputHelper output)
{
    [Fact]
    public void MutualKnnIsOneForIdenticalAndNearChanceForIndependent()
    {
        var x = Gaussian(200, 16, 1);
        Assert.Equal(1.0, MutualKnn.Score(x, Scale(x, 2f), 10), 12);
        double indep = MutualKnn.Score(x, Gaussian(200, 16, 2), 10);
        Assert.InRange(indep, 0.0, 0.15); // chance 10/199 = 0.05
        var nb = MutualKnn.Neighbours(M(4, 1, 0f, 1f, 3f, 10f), 1);
        Assert.Equal(new[] { 1 }, nb[0]); // cosine in 1-d: positive rows all tie at 1 -> lowest index (0 excluded) wins
        Assert.Throws<ArgumentException>(() => MutualKnn.Score(x, x, 200));
    }

    [Fact]
    public void RealEncodersRankAboveAShuffledControlAndTheReportPlots()
    {
        var (image, text) = (FixtureFeatures.Images.Pooled, FixtureFeatures.Texts.Pooled);
        var perm = Enumerable.Range(0, text.Rows).Select(i => (i * 17 + 5) % text.Rows).ToArray(); // 17 coprime with 56
        var sw = Stopwatch.StartNew();
        var report = EncoderPairRanker.Rank(
            new Dictionary<string, EmbeddingMatrix> { ["resnet18"] = image, ["resnet18-shuffled"] = image.SelectRows(perm) },
            new Dictionary<string, EmbeddingMatrix> { ["all-MiniLM-L6-v2"] = text });
        double ms = sw.Elapsed.TotalMilliseconds;
        foreach (var p in report.Pairs)
            output.WriteLine($"#{p.Rank} {p.ImageEncoder} x {p.TextEncoder}: linear CKA {p.LinearCka:F4}, unbiased {p.UnbiasedLinearCka:F4}, RBF CKA {p.KernelCka:F4}, mutual-kNN(k={report.KnnK}) {p.MutualKnn:F4}");
        output.WriteLine($"ranking 2 pairs x 4 metrics on {report.N} pairs: {ms:F0} ms");
        Assert.Equal(56, report.N);
        Assert.Equal("resnet18", report.Best.ImageEncoder);
        var real = report.Pairs.Single(p => p.ImageEncoder == "resnet18");
        var control = report.Pairs.Single(p => p.ImageEncoder != "resnet18");
        Assert.True(real.LinearCka > control.LinearCka + 0.05, $"{real.LinearCka} vs {control.LinearCka}");
        Assert.True(real.KernelCka > control.KernelCka);
        Assert.True(real.MutualKnn > control.MutualKnn);

        var json = JsonSerializer.Serialize(report);
        Assert.Contains("\"linear_cka\":", json);

        var dir = Path.Combine(Path.GetTempPath(), "mlnet-align-eval-" + Environment.ProcessId);
        try
        {
            var heat = Path.Combine(dir, "cka.png");
            SimilarityCharts.EncoderPairHeatmap(heat, report);
            AssertPng(heat);
            var zs = ZeroShotEvaluator.Evaluate(M(3, 2, 1, 0, 0, 1, 1, 0), M(2, 2, 1, 0, 0, 1), new[] { 0, 1, 1 }, new[] { "cat", "dog" });
            EvaluationCharts.ConfusionMatrix(Path.Combine(dir, "confusion.png"), zs);
            AssertPng(Path.Combine(dir, "confusion.png"));
            Plots.GroupedBars(Path.Combine(dir, "bars.png"), new[] { "a", "b" }, new[] { "i2t R@1", "t2i R@1" }, new[] { new[] { 0.5, 0.4 }, new[] { 0.7, 0.6 } }, "Retrieval", "recall");
            AssertPng(Path.Combine(dir, "bars.png"));
            Plots.Lines(Path.Combine(dir, "lines.png"), new Dictionary<string, (double[], double[])> { ["loss"] = (new[] { 0.0, 1, 2 }, new[] { 4.0, 2, 1 }) }, "Loss", "step", "loss", logY: true);
            AssertPng(Path.Combine(dir, "lines.png"));
            Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
        }
        finally
        {
            if (Environment.GetEnvironmentVariable("MLNET_ALIGN_KEEP_PLOTS") is null && Directory.Exists(dir)) Directory.Delete(dir, true);
            else output.WriteLine($"plots kept in {dir}");
        }
    }

    [Fact]
    public void CaptionsAreAveragedPerImage()
    {
        var avg = EncoderPairRanker.AverageCaptionsPerImage(M(3, 2, 1, 0, 0, 1, 2, 2), new[] { 0, 0, 1 }, 2);
        Assert.Equal(new[] { 0.5f, 0.5f, 2f, 2f }, avg.Data);
        Assert.Throws<ArgumentException>(() => EncoderPairRanker.AverageCaptionsPerImage(M(3, 2, 1, 0, 0, 1, 2, 2), new[] { 0, 0, 0 }, 2));
    }

    [Fact]
    public void MismatchedProbeRowsAreNamed()
    {
        var ex = Assert.Throws<ArgumentException>(() => EncoderPairRanker.Rank(
            new Dictionary<string, EmbeddingMatrix> { ["a"] = Gaussian(10, 3, 1) },
            new Dictionary<string, EmbeddingMatrix> { ["b"] = Gaussian(9, 3, 2) }));
        Assert.Contains("'b' has 9 probe rows, expected 10", ex.Message);
    }

    private static void AssertPng(string path)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.True(bytes.Length > 2000, $"{path}: {bytes.Length} bytes");
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47 }, bytes[..4]);
    }
}
