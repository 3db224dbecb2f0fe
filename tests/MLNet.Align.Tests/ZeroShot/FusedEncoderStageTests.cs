using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Align.Onnx;
using MLNet.Align.Projection;
using MLNet.Align.ZeroShot;
using Xunit.Abstractions;
using MLNet.Align.Prompts;

namespace MLNet.Align.Tests.ZeroShot;

/// <summary>
/// The ResNet-18 encoder's ONNX stages fused into one graph (<see cref="ResNet18MLNetImageEncoder.FuseOnnxStages"/>,
/// the default) against the separate stages it replaces: the saved, reloaded zips must give the same scores, embeddings
/// and labels on the real fixture images, and the fused chain must really hold one encoder ApplyOnnxModel and no
/// CopyColumns.
/// </summary>
public class FusedEncoderStageTests(ZeroShotFixture fx, ITestOutputHelper output) : IClassFixture<ZeroShotFixture>
{
    private sealed class Row
    {
        public float[] Score { get; set; } = [];
        public string[] PredictedClass { get; set; } = [];
        public uint[] PredictedLabel { get; set; } = [];
        [ColumnName(ZeroShotClassifierEstimator.ImageEmbeddingColumnName)] public float[] Embedding { get; set; } = [];
        [ColumnName(ZeroShotClassifierEstimator.ImageAlignedColumnName)] public float[] Aligned { get; set; } = [];
    }

    private sealed class TokenRow
    {
        public float[] Score { get; set; } = [];
        [ColumnName(ZeroShotClassifierEstimator.ImageTokensColumnName)] public float[] Tokens { get; set; } = [];
    }

    private static readonly string[] RealImages = Directory.GetFiles(FixtureFeatures.PairImages, "*.png").Order(StringComparer.Ordinal).ToArray();

    private static IEnumerable<ITransformer> Flatten(ITransformer t) => t is IEnumerable<ITransformer> c ? c.SelectMany(Flatten) : [t];

    private static ITransformer SaveAndLoad(MLContext ml, IOnnxExportableProjector projector, ClassEmbeddings classes, bool fuse, bool composite, string dir)
    {
        string zip = Path.Combine(dir, $"zs-fuse{fuse}-composite{composite}.zip");
        ZeroShotClassifierIO.BuildAndSave(ml, projector, classes, zip, new ZeroShotClassifierEstimator.Options
        {
            ImageEncoder = new ResNet18MLNetImageEncoder { FuseOnnxStages = fuse, CompositeOntoWhite = composite },
        });
        return ml.Model.Load(zip, out _);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void FusedEncoderStageEqualsSeparateStages(bool composite)
    {
        Assert.True(RealImages.Length >= 50, $"expected the 56 fixture images, found {RealImages.Length}");
        var ml = new MLContext(42);
        var dir = Directory.CreateTempSubdirectory("fused-stage").FullName;
        var fused = SaveAndLoad(ml, fx.Projector, fx.Classes, fuse: true, composite, dir);
        var separate = SaveAndLoad(ml, fx.Projector, fx.Classes, fuse: false, composite, dir);

        // Structure: the fused zip holds exactly two ApplyOnnxModel stages (encoder, projector + head) and no CopyColumns;
        // the separate one held three more stages.
        var f = Flatten(fused).Select(t => t.GetType().Name).ToList();
        var s = Flatten(separate).Select(t => t.GetType().Name).ToList();
        output.WriteLine($"fused: {string.Join(" -> ", f)}");
        output.WriteLine($"separate: {string.Join(" -> ", s)}");
        Assert.Equal(2, f.Count(n => n == "OnnxTransformer"));
        Assert.DoesNotContain("ColumnCopyingTransformer", f);
        Assert.Equal(composite ? 4 : 3, s.Count(n => n == "OnnxTransformer"));

        using var fe = ml.Model.CreatePredictionEngine<ZeroShotImageInput, Row>(fused);
        using var se = ml.Model.CreatePredictionEngine<ZeroShotImageInput, Row>(separate);
        double maxScore = 0, maxEmbedding = 0, maxAligned = 0;
        foreach (var path in RealImages)
        {
            var a = fe.Predict(new ZeroShotImageInput { ImagePath = path });
            var b = se.Predict(new ZeroShotImageInput { ImagePath = path });
            Assert.Equal(fx.Classes.Count, a.Score.Length);
            Assert.Equal(512, a.Embedding.Length);
            Assert.Equal(b.PredictedClass, a.PredictedClass);
            Assert.Equal(b.PredictedLabel, a.PredictedLabel);
            for (int k = 0; k < a.Score.Length; k++) maxScore = Math.Max(maxScore, Math.Abs(a.Score[k] - b.Score[k]));
            for (int k = 0; k < a.Embedding.Length; k++) maxEmbedding = Math.Max(maxEmbedding, Math.Abs(a.Embedding[k] - b.Embedding[k]) / Math.Max(1, Math.Abs(b.Embedding[k])));
            for (int k = 0; k < a.Aligned.Length; k++) maxAligned = Math.Max(maxAligned, Math.Abs(a.Aligned[k] - b.Aligned[k]));
        }
        output.WriteLine($"{RealImages.Length} images, composite {composite}: max |score diff| {maxScore:E2}, max relative embedding diff {maxEmbedding:E2}, max |aligned diff| {maxAligned:E2}");
        Assert.True(maxScore <= 1e-5, $"scores differ by {maxScore:E2}");
        Assert.True(maxEmbedding <= 1e-5, $"image embeddings differ by {maxEmbedding:E2} (relative)");
        Assert.True(maxAligned <= 1e-5, $"aligned embeddings differ by {maxAligned:E2}");
        foreach (var t in Flatten(fused).Concat(Flatten(separate))) (t as IDisposable)?.Dispose();
        Directory.Delete(dir, true);
    }

    [Fact]
    public void FusedTokenStageEqualsSeparateStages()
    {
        var ml = new MLContext(42);
        var dir = Directory.CreateTempSubdirectory("fused-token-stage").FullName;
        using var model = new AlignedModel(new ProjectorOptions { ImageLocal = ProjectorKind.Token, ImageGlobal = ProjectorKind.Token, TextGlobal = ProjectorKind.Mlp, EmbeddingDimension = 64 },
            512, 384, 512, null, seed: 3);
        var classes = ClassEmbeddingBuilder.Build(Fixtures.IconClasses, PromptTemplates.IconsAndClipArt, FixtureFeatures.MiniLM, model);
        var fused = SaveAndLoad(ml, model, classes, fuse: true, composite: true, dir);
        var separate = SaveAndLoad(ml, model, classes, fuse: false, composite: true, dir);
        Assert.Equal(2, Flatten(fused).Count(t => t.GetType().Name == "OnnxTransformer"));
        using var fe = ml.Model.CreatePredictionEngine<ZeroShotImageInput, TokenRow>(fused);
        using var se = ml.Model.CreatePredictionEngine<ZeroShotImageInput, TokenRow>(separate);
        double maxScore = 0, maxTokens = 0;
        foreach (var path in RealImages.Take(16))
        {
            var a = fe.Predict(new ZeroShotImageInput { ImagePath = path });
            var b = se.Predict(new ZeroShotImageInput { ImagePath = path });
            Assert.Equal(512 * 49, a.Tokens.Length);
            for (int k = 0; k < a.Score.Length; k++) maxScore = Math.Max(maxScore, Math.Abs(a.Score[k] - b.Score[k]));
            for (int k = 0; k < a.Tokens.Length; k++) maxTokens = Math.Max(maxTokens, Math.Abs(a.Tokens[k] - b.Tokens[k]) / Math.Max(1, Math.Abs(b.Tokens[k])));
        }
        output.WriteLine($"token zip, 16 images: max |score diff| {maxScore:E2}, max relative token diff {maxTokens:E2}");
        Assert.True(maxScore <= 1e-5, $"scores differ by {maxScore:E2}");
        Assert.True(maxTokens <= 1e-5, $"image tokens differ by {maxTokens:E2} (relative)");
        foreach (var t in Flatten(fused).Concat(Flatten(separate))) (t as IDisposable)?.Dispose();
        Directory.Delete(dir, true);
    }

    [Fact]
    public void RenameValueRewiresEveryReferenceAndRejectsClashes()
    {
        var g = new OnnxGraphBuilder("rename");
        var x = g.Input("x", 1, 2);
        var y = g.Op("Relu", x);
        g.Node("Neg", [y], outputs: ["out"]);
        g.Output("out", 1, 2);
        var model = g.Build();
        OnnxGraphEditor.RenameValue(model, y, "mid");
        OnnxGraphEditor.RenameValue(model, "out", "column");
        Assert.Equal("mid", model.Graph.Node[0].Output[0]);
        Assert.Equal("mid", model.Graph.Node[1].Input[0]);
        Assert.Equal("column", model.Graph.Output[0].Name);
        Assert.Equal("column", model.Graph.Node[1].Output[0]);
        Assert.Throws<ArgumentException>(() => OnnxGraphEditor.RenameValue(model, "nope", "z"));
        Assert.Throws<ArgumentException>(() => OnnxGraphEditor.RenameValue(model, "mid", "x"));
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(OnnxGraphEditor.ToBytes(model));
        Assert.Equal("column", session.OutputMetadata.Keys.Single());
    }
}
