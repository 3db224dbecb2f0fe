using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLNet.Align.Embeddings;
using MLNet.Align.Evaluation;
using MLNet.Align.Evaluation.Baselines;
using MLNet.Align.Projection;
using Xunit.Abstractions;
using static MLNet.Align.Tests.Evaluation.TestMatrices;

namespace MLNet.Align.Tests.Evaluation;

public class BaselineTests(ITestOutputHelper output)
{
    [Fact]
    public void ProcrustesRecoversAKnownRotation()
    {
        var x = Gaussian(200, 16, 11);
        var r = RandomOrthogonal(16, 12);
        var t = Times(x, r, 16);
        var p = ProcrustesMap.Fit(x, t);
        Assert.True(p.MapsImage);
        for (int i = 0; i < r.Length; i++) Assert.Equal(r[i], p.Rotation[i], 1e-4);
        var ret = ProjectorEvaluation.PairedRetrieval(p, x, t);
        Assert.Equal(1.0, ret.ImageToText.R1);
        Assert.Equal(1.0, ret.TextToImage.R1);
    }

    [Fact]
    public void ProcrustesMapsTheWiderSideSemiOrthogonally()
    {
        var x = Gaussian(150, 12, 5);
        var q = RandomOrthogonal(20, 6); // use the first 12 rows: a [12, 20] map with orthonormal rows
        var t = Times(x, q.Take(12 * 20).ToArray(), 20);
        var p = ProcrustesMap.Fit(x, t);
        Assert.False(p.MapsImage);
        Assert.Equal(12, p.EmbeddingDimension);
        var w = p.Rotation; // [20, 12], orthonormal columns
        for (int a = 0; a < 12; a++)
            for (int b = 0; b < 12; b++)
            {
                double s = 0;
                for (int k = 0; k < 20; k++) s += w[k * 12 + a] * w[k * 12 + b];
                Assert.Equal(a == b ? 1.0 : 0.0, s, 1e-4);
            }
        Assert.Equal(1.0, ProjectorEvaluation.PairedRetrieval(p, x, t).ImageToText.R1);
    }

    [Fact]
    public void LeastSquaresAndReverseRidgeRecoverKnownLinearMaps()
    {
        var x = Gaussian(300, 20, 21);
        var a = Gaussian(20, 12, 22).Data.Select(v => (double)v).ToArray();
        var t = Times(x, a, 12);
        for (int i = 0; i < t.Data.Length; i++) t.Data[i] += 3f * (i % 12); // a bias: absorbed by centring
        var ls = LeastSquaresMap.Fit(x, t, new LeastSquaresMap.Options { Lambda = 0 });
        for (int i = 0; i < a.Length; i++) Assert.Equal(a[i], ls.ImageSide.Weights![i], 1e-4);
        Assert.Equal(12, ls.EmbeddingDimension);
        // Noiseless: the projected image equals the normalised centred text.
        var pi = ls.ProjectImages(x);
        var pt = ls.ProjectTexts(t);
        for (int i = 0; i < pi.Data.Length; i++) Assert.Equal(pt.Data[i], pi.Data[i], 1e-4);

        var b = Gaussian(12, 20, 23).Data.Select(v => (double)v).ToArray();
        var tt = Gaussian(300, 12, 24);
        var xx = Times(tt, b, 20);
        var rr = ReverseRidgeMap.Fit(xx, tt, new ReverseRidgeMap.Options { Lambda = 0 });
        Assert.Equal(20, rr.EmbeddingDimension);
        for (int i = 0; i < b.Length; i++) Assert.Equal(b[i], rr.TextSide.Weights![i], 1e-4);

        // A ridge shrinks the map.
        var shrunk = LeastSquaresMap.Fit(x, t, new LeastSquaresMap.Options { Lambda = 1 });
        Assert.True(shrunk.ImageSide.Weights!.Sum(v => v * v) < ls.ImageSide.Weights!.Sum(v => v * v) * 0.8);
    }

    [Fact]
    public void BadInputThrowsNamingExpectedAndActual()
    {
        var ex = Assert.Throws<ArgumentException>(() => LeastSquaresMap.Fit(Gaussian(10, 4, 1), Gaussian(9, 3, 2)));
        Assert.Contains("10 rows", ex.Message);
        Assert.Contains("9", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => ProcrustesMap.Fit(Gaussian(1, 4, 1), Gaussian(1, 3, 2)));
        Assert.Contains("at least 2 rows, got 1", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => AsifProjector.Fit(Gaussian(5, 4, 1), Gaussian(6, 4, 2)));
        Assert.Contains("5 rows", ex.Message);
        var ls = LeastSquaresMap.Fit(Gaussian(10, 4, 1), Gaussian(10, 3, 2));
        ex = Assert.Throws<ArgumentException>(() => ls.ProjectImages(Gaussian(2, 5, 3)));
        Assert.Contains("width 5, expected 4", ex.Message);
    }

    [Fact]
    public void AsifOnIdenticalModalitiesRetrievesPerfectly()
    {
        var text = FixtureFeatures.Texts.Pooled;
        var anchors = Enumerable.Range(0, 40).ToArray();
        var held = Enumerable.Range(40, text.Rows - 40).ToArray();
        var asif = AsifProjector.Fit(text.SelectRows(anchors), text.SelectRows(anchors), new AsifProjector.Options { K = 20, P = 8 });
        Assert.Equal(40, asif.EmbeddingDimension);
        var q = text.SelectRows(held);
        var r = ProjectorEvaluation.PairedRetrieval(asif, q, q);
        Assert.Equal(1.0, r.ImageToText.R1);
        Assert.Equal(1.0, r.TextToImage.R1);
        var proj = asif.ProjectImages(q);
        for (int i = 0; i < proj.Rows; i++)
        {
            Assert.Equal(1f, System.Numerics.Tensors.TensorPrimitives.Norm(proj.Row(i)), 5);
            Assert.True(proj.Row(i).ToArray().Count(v => v != 0) <= 20);
        }
    }

    [Fact]
    public void BaselinesOnRealFixturePairsBeatChanceInSample()
    {
        var (image, text) = (FixtureFeatures.Images.Pooled, FixtureFeatures.Texts.Pooled);
        Assert.Equal(56, image.Rows);
        var sw = Stopwatch.StartNew();
        var fitted = new (IAlignedProjector P, double MinR1)[]
        {
            // In-sample with 56 pairs < feature width every baseline measured 100% i2t/t2i R@1 (chance 1.8%).
            (LeastSquaresMap.Fit(image, text), 0.5),
            (ReverseRidgeMap.Fit(image, text), 0.5),
            (ProcrustesMap.Fit(image, text), 0.5),
            (AsifProjector.Fit(image, text, new AsifProjector.Options { K = 800, P = 8 }), 0.5),
        };
        foreach (var (p, minR1) in fitted)
        {
            var r = ProjectorEvaluation.PairedRetrieval(p, image, text);
            output.WriteLine($"{p.Name,-14} E={p.EmbeddingDimension,4}  i2t R@1 {r.ImageToText.R1:P1} R@5 {r.ImageToText.R5:P1}  t2i R@1 {r.TextToImage.R1:P1} R@5 {r.TextToImage.R5:P1}");
            Assert.InRange(r.ImageToText.R1, minR1, 1.0);
            Assert.InRange(r.TextToImage.R1, minR1, 1.0);
        }
        // Held out (fit on even rows, test on odd): measured i2t R@1 32.1%, t2i 39.3%; chance is 1/28 = 3.6%.
        var train = Enumerable.Range(0, 56).Where(i => i % 2 == 0).ToArray();
        var test = Enumerable.Range(0, 56).Where(i => i % 2 == 1).ToArray();
        var procrustes = ProcrustesMap.Fit(image.SelectRows(train), text.SelectRows(train));
        var held = ProjectorEvaluation.PairedRetrieval(procrustes, image.SelectRows(test), text.SelectRows(test));
        output.WriteLine($"procrustes held-out (28 fit / 28 test): i2t R@1 {held.ImageToText.R1:P1} R@5 {held.ImageToText.R5:P1} t2i R@1 {held.TextToImage.R1:P1} R@5 {held.TextToImage.R5:P1}");
        Assert.InRange(held.ImageToText.R1, 0.15, 1.0);
        Assert.InRange(held.TextToImage.R1, 0.15, 1.0);
        output.WriteLine($"fits + evals {sw.Elapsed.TotalMilliseconds:F0} ms");
    }

    [Fact]
    public void LinearBaselinesExportOnnxThatMatchesProjection()
    {
        var x = Gaussian(30, 16, 31);
        var t = Gaussian(30, 8, 32);
        foreach (LinearAlignedProjector p in new LinearAlignedProjector[] { LeastSquaresMap.Fit(x, t), ReverseRidgeMap.Fit(x, t), ProcrustesMap.Fit(x, t) })
        {
            Compare(p.ExportImageProjectorOnnx(), ProjectorOnnxNames.ImageEmbedding, ProjectorOnnxNames.ImageAligned, x, p.ProjectImages(x));
            Compare(p.ExportTextProjectorOnnx(), ProjectorOnnxNames.TextEmbedding, ProjectorOnnxNames.TextAligned, t, p.ProjectTexts(t));
        }
    }

    private static void Compare(byte[] onnx, string input, string outputName, EmbeddingMatrix x, EmbeddingMatrix expected)
    {
        using var session = new InferenceSession(onnx);
        var feed = new DenseTensor<float>(x.Data, new[] { x.Rows, x.Columns });
        using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor(input, feed) });
        var got = results.Single(r => r.Name == outputName).AsTensor<float>().ToArray();
        Assert.Equal(expected.Data.Length, got.Length);
        for (int i = 0; i < got.Length; i++) Assert.Equal(expected.Data[i], got[i], 1e-5);
    }
}
