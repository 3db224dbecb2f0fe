using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLNet.Align.Embeddings;
using MLNet.Align.Evaluation.Baselines;
using MLNet.Align.Projection;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace MLNet.Align.Tests.Projection;

/// <summary>The closed-form initialiser on real ResNet-18 / MiniLM features of the 56 fixture pairs: an initialised
/// token projector must BE the closed-form baseline fitted on LayerNorm-ed features, in TorchSharp and in ONNX.</summary>
[Collection("torch-projection")]
public class ClosedFormInitializerTests(ITestOutputHelper output)
{
    internal static float MaxAbsDiff(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        float m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }

    internal static ProjectorOptions TokenGlobals(int width) => new()
    {
        ImageGlobal = ProjectorKind.Token, TextGlobal = ProjectorKind.Token, EmbeddingDimension = width,
    };

    /// <summary>Width of each map on 512-d images / 384-d texts: least squares and Procrustes land in the narrower
    /// (text) space, reverse ridge in the image space.</summary>
    internal static int Width(ClosedFormKind kind) => kind == ClosedFormKind.ReverseRidge ? 512 : 384;

    private static LinearAlignedProjector Baseline(ClosedFormKind kind, EmbeddingMatrix lnImage, EmbeddingMatrix lnText, double lambda) => kind switch
    {
        ClosedFormKind.LeastSquares => LeastSquaresMap.Fit(lnImage, lnText, new LeastSquaresMap.Options { Lambda = lambda }),
        ClosedFormKind.ReverseRidge => ReverseRidgeMap.Fit(lnImage, lnText, new ReverseRidgeMap.Options { Lambda = lambda }),
        _ => ProcrustesMap.Fit(lnImage, lnText, new ProcrustesMap.Options { NormalizeRows = false }),
    };

    [Theory]
    [InlineData(ClosedFormKind.LeastSquares, 0.1)]
    [InlineData(ClosedFormKind.ReverseRidge, 0.1)]
    [InlineData(ClosedFormKind.ReverseRidge, 0.5)]
    [InlineData(ClosedFormKind.Procrustes, 0.1)]
    public void InitialisedTokenProjectorEqualsTheClosedFormMapOnLayerNormedFeatures(ClosedFormKind kind, double lambda)
    {
        var image = FixtureFeatures.Images.Pooled;
        var text = FixtureFeatures.Texts.Pooled;
        var lnImage = ClosedFormInitializer.LayerNormRows(image);
        var lnText = ClosedFormInitializer.LayerNormRows(text);
        var baseline = Baseline(kind, lnImage, lnText, lambda);
        Assert.Equal(Width(kind), baseline.EmbeddingDimension);

        using var model = new AlignedModel(TokenGlobals(Width(kind)), 512, 384, seed: 3);
        var before = model.ProjectImages(image).Data;
        ClosedFormInitializer.Create(kind, image, text, lambda)(model);

        float di = MaxAbsDiff(baseline.ProjectImages(lnImage).Data, model.ProjectImages(image).Data);
        float dt = MaxAbsDiff(baseline.ProjectTexts(lnText).Data, model.ProjectTexts(text).Data);
        output.WriteLine($"{kind} lambda {lambda}: max |model - baseline| image {di:E2}, text {dt:E2} (unit rows, E = {baseline.EmbeddingDimension})");
        // Both sides are float32 GEMMs of the same (LN(x) - mean) W on unit-normalised outputs: observed <= ~1e-6;
        // 1e-4 leaves room for BLAS summation order but still fails on any wrong mean, transpose or leftover branch.
        Assert.True(di <= 1e-4f, $"{kind} image side differs by {di}");
        Assert.True(dt <= 1e-4f, $"{kind} text side differs by {dt}");
        // The initialiser really changed the model (the random init is far from the map).
        Assert.True(MaxAbsDiff(before, model.ProjectImages(image).Data) > 0.05f);

        // The same map on features the fit never saw (row order reversed, a different subset) still agrees: the
        // model holds the map, not the training outputs.
        var rows = Enumerable.Range(0, image.Rows).Reverse().Where(r => r % 3 != 0).ToArray();
        var heldImage = image.SelectRows(rows);
        Assert.True(MaxAbsDiff(baseline.ProjectImages(ClosedFormInitializer.LayerNormRows(heldImage)).Data, model.ProjectImages(heldImage).Data) <= 1e-4f);
    }

    [Fact]
    public void LayerNormRowsEqualsTorchLayerNormAtInit()
    {
        foreach (var m in new[] { FixtureFeatures.Images.Pooled, FixtureFeatures.Texts.Pooled })
        {
            using var ln = nn.LayerNorm(m.Columns);
            using var x = tensor(m.Data, new long[] { m.Rows, m.Columns });
            using var y = ln.forward(x);
            float d = MaxAbsDiff(y.data<float>().ToArray(), ClosedFormInitializer.LayerNormRows(m).Data);
            output.WriteLine($"LayerNorm {m.Columns}-d: max |ours - torch| {d:E2}");
            Assert.True(d <= 1e-5f, $"{m.Columns}-d LayerNorm differs by {d}");
        }
        // A constant row has zero variance: eps keeps it finite (all zeros), as torch does.
        var constant = ClosedFormInitializer.LayerNormRows(new EmbeddingMatrix(Enumerable.Repeat(3f, 8).ToArray(), 2, 4));
        Assert.All(constant.Data, v => Assert.Equal(0f, v));
    }

    [Fact]
    public void WrongConfigurationThrowsNamingThePieceOrTheExpectedWidth()
    {
        var init = ClosedFormInitializer.Create(ClosedFormKind.LeastSquares, FixtureFeatures.Images.Pooled, FixtureFeatures.Texts.Pooled);
        using (var mlp = new AlignedModel(ProjectorOptions.PooledMlp(384), 512, 384))
        {
            var e = Assert.Throws<ArgumentException>(() => init(mlp));
            Assert.Contains("Mlp", e.Message);
            Assert.Contains("Token", e.Message);
        }
        using (var mixed = new AlignedModel(TokenGlobals(384) with { TextGlobal = ProjectorKind.Linear }, 512, 384))
            Assert.Contains("text None/Linear", Assert.Throws<ArgumentException>(() => init(mixed)).Message);
        using (var local = new AlignedModel(TokenGlobals(384) with { ImageLocal = ProjectorKind.Token }, 512, 384, imageTokenDimension: 512))
            Assert.Contains("image Token/Token", Assert.Throws<ArgumentException>(() => init(local)).Message);
        using (var narrow = new AlignedModel(TokenGlobals(128), 512, 384))
        {
            var e = Assert.Throws<ArgumentException>(() => init(narrow));
            Assert.Contains("EmbeddingDimension must be 384, got 128", e.Message);
        }
        // Reverse ridge lives in the image space: 384 is wrong there, 512 is expected.
        using (var textWidth = new AlignedModel(TokenGlobals(384), 512, 384))
            Assert.Contains("must be 512", Assert.Throws<ArgumentException>(() =>
                ClosedFormInitializer.ReverseRidge(FixtureFeatures.Images.Pooled, FixtureFeatures.Texts.Pooled)(textWidth)).Message);
        // Unpaired matrices fail at fit time.
        Assert.Throws<ArgumentException>(() => ClosedFormInitializer.Create(ClosedFormKind.Procrustes, FixtureFeatures.Images.Pooled,
            FixtureFeatures.Texts.Pooled.SelectRows(Enumerable.Range(0, 10).ToArray())));
    }

    [Theory]
    [InlineData(ClosedFormKind.LeastSquares)]
    [InlineData(ClosedFormKind.ReverseRidge)]
    public void OnnxExportOfAnInitialisedModelMatchesTorchSharp(ClosedFormKind kind)
    {
        var image = FixtureFeatures.Images.Pooled;
        var text = FixtureFeatures.Texts.Pooled;
        using var model = new AlignedModel(TokenGlobals(Width(kind)), 512, 384, seed: 5);
        ClosedFormInitializer.Create(kind, image, text)(model);
        using (var s = new InferenceSession(model.ExportImageProjectorOnnx()))
        using (var r = s.Run(new[] { NamedOnnxValue.CreateFromTensor(ProjectorOnnxNames.ImageEmbedding, new DenseTensor<float>(image.Data, new[] { image.Rows, 512 })) }))
        {
            float d = MaxAbsDiff(model.ProjectImages(image).Data, r.Single(x => x.Name == ProjectorOnnxNames.ImageAligned).AsEnumerable<float>().ToArray());
            output.WriteLine($"{kind} ONNX image vs TorchSharp: {d:E2}");
            Assert.True(d <= 1e-5f, $"image ONNX differs by {d}");
        }
        using (var s = new InferenceSession(model.ExportTextProjectorOnnx()))
        using (var r = s.Run(new[] { NamedOnnxValue.CreateFromTensor(ProjectorOnnxNames.TextEmbedding, new DenseTensor<float>(text.Data, new[] { text.Rows, 384 })) }))
        {
            float d = MaxAbsDiff(model.ProjectTexts(text).Data, r.Single(x => x.Name == ProjectorOnnxNames.TextAligned).AsEnumerable<float>().ToArray());
            output.WriteLine($"{kind} ONNX text vs TorchSharp: {d:E2}");
            Assert.True(d <= 1e-5f, $"text ONNX differs by {d}");
        }
    }
}
