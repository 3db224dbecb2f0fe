using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Onnx;
using MLNet.Align.Projection;
using MLNet.Align.ZeroShot;
using Xunit.Abstractions;
using MLNet.Align.Prompts;

namespace MLNet.Align.Tests.ZeroShot;

/// <summary>Token projectors (docs/method.md 3.3: mean of P_loc over tokens + P_cls of the pooled/CLS feature) served from an
/// ML.NET zip of stock transformers, for ResNet-18's 7x7 feature map and a ViT-shaped graph.</summary>
public class TokenZipTests(ITestOutputHelper output)
{
    private const string PooledCol = "mlnet_align_test_pooled", TokensCol = "mlnet_align_test_tokens";

    private sealed class FeatureRow
    {
        [ColumnName(PooledCol)] public float[] Pooled { get; set; } = [];
        [ColumnName(TokensCol)] public float[] Tokens { get; set; } = [];
    }

    private sealed class AlignedRow
    {
        [ColumnName(ZeroShotClassifierEstimator.ImageAlignedColumnName)] public float[] Aligned { get; set; } = [];
        public float[] Score { get; set; } = [];
        public string[] PredictedClass { get; set; } = [];
    }

    private static IDataView Paths(MLContext ml, IEnumerable<string> paths)
        => ml.Data.LoadFromEnumerable(paths.Select(p => new ZeroShotImageInput { ImagePath = p }).ToList());

    private static AlignedModel TokenModel(int imageDim, int tokenDim, int seed = 3)
        => new(new ProjectorOptions { ImageLocal = ProjectorKind.Token, ImageGlobal = ProjectorKind.Token, TextGlobal = ProjectorKind.Mlp, EmbeddingDimension = 64, Dropout = 0.1f },
            imageDim, 384, tokenDim, null, seed: seed);

    private static ClassEmbeddings Classes(IAlignedProjector projector)
        => ClassEmbeddingBuilder.Build(Fixtures.IconClasses, PromptTemplates.IconsAndClipArt, FixtureFeatures.MiniLM, projector);

    /// <summary>Reference: the encoder part of the chain (stock transforms, same ONNX) gives pooled + tokens; the
    /// TorchSharp model projects them and the managed head scores them. Returns aligned [n, E] and scores [n, C].</summary>
    private static (EmbeddingMatrix Aligned, EmbeddingMatrix Scores, EmbeddingMatrix Pooled, TokenTensor Tokens) Reference(
        MLContext ml, IMLNetTokenImageEncoder encoder, AlignedModel model, ClassEmbeddings classes, string[] paths)
    {
        var features = encoder.CreateTokenEstimator(ml.Transforms, PooledCol, TokensCol, "ImagePath", null).Fit(Paths(ml, paths));
        var rows = ml.Data.CreateEnumerable<FeatureRow>(features.Transform(Paths(ml, paths)), false).ToList();
        var (h, w) = encoder.TokenGrid;
        int t = h * w, d = encoder.TokenDimension;
        var pooled = new EmbeddingMatrix(rows.SelectMany(r => r.Pooled).ToArray(), rows.Count, encoder.Dimension);
        var tokenData = new float[rows.Count * t * d];
        for (int i = 0; i < rows.Count; i++)
        {
            Assert.Equal(t * d, rows[i].Tokens.Length);
            for (int k = 0; k < t; k++)
                for (int c = 0; c < d; c++)
                    tokenData[(i * t + k) * d + c] = encoder.TokenLayout == ImageTokenLayout.Nchw ? rows[i].Tokens[c * t + k] : rows[i].Tokens[k * d + c];
        }
        var tokens = new TokenTensor(tokenData, rows.Count, t, d, Enumerable.Repeat(t, rows.Count).ToArray());
        var aligned = model.ProjectImages(pooled, tokens);
        var (scores, _) = ZeroShotHead.Score(aligned, classes, model.LogitScale);
        foreach (var x in (IEnumerable<ITransformer>)features) (x as IDisposable)?.Dispose();
        return (aligned, scores, pooled, tokens);
    }

    private static float MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        float m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }

    [Fact]
    public void ResNet18TokenZipEqualsInProcessModelAndFreshProcess()
    {
        var ml = new MLContext(42);
        using var model = TokenModel(512, 512);
        var classes = Classes(model);
        var encoder = new ResNet18MLNetImageEncoder();
        var paths = Fixtures.Images.Select(Fixtures.Image).ToArray();
        var reference = Reference(ml, encoder, model, classes, paths);

        // The tokens really are the feature map that ResNet-18 average-pools into its pooled output.
        float poolGap = 0;
        for (int i = 0; i < paths.Length; i++)
            for (int c = 0; c < 512; c++)
            {
                double mean = 0;
                for (int k = 0; k < 49; k++) mean += reference.Tokens.Item(i)[k * 512 + c];
                poolGap = Math.Max(poolGap, Math.Abs((float)(mean / 49) - reference.Pooled.Row(i)[c]));
            }
        Assert.True(poolGap < 1e-4, $"mean of the 49 tokens differs from the pooled output by {poolGap}");

        var dir = Directory.CreateTempSubdirectory("token-zip").FullName;
        var zip = Path.Combine(dir, "token.zip");
        ZeroShotClassifierIO.BuildAndSave(ml, model, classes, zip);
        var loaded = ml.Model.Load(zip, out _);
        using var engine = ml.Model.CreatePredictionEngine<ZeroShotImageInput, AlignedRow>(loaded);
        float alignedDiff = 0, scoreDiff = 0;
        var inProc = new List<AlignedRow>();
        for (int i = 0; i < paths.Length; i++)
        {
            var p = engine.Predict(new ZeroShotImageInput { ImagePath = paths[i] });
            inProc.Add(new AlignedRow { Aligned = p.Aligned.ToArray(), Score = p.Score.ToArray(), PredictedClass = p.PredictedClass.ToArray() });
            alignedDiff = Math.Max(alignedDiff, MaxAbsDiff(p.Aligned, reference.Aligned.Row(i)));
            scoreDiff = Math.Max(scoreDiff, MaxAbsDiff(p.Score, reference.Scores.Row(i)));
            Assert.Equal(Fixtures.IconClasses[TensorIndexOfMax(reference.Scores.Row(i))], p.PredictedClass[0]);
        }
        output.WriteLine($"ResNet-18 token zip vs in-process model over {paths.Length} images: max |image_aligned diff| = {alignedDiff:G3}, max |Score diff| = {scoreDiff:G3}");
        Assert.True(alignedDiff <= 1e-5 && scoreDiff <= 1e-5, $"aligned {alignedDiff}, score {scoreDiff}");

        // Fresh process: the CLI's predict command reads the same zip.
        using var doc = CliProcess.PredictJson(zip, paths);
        float freshDiff = 0;
        for (int i = 0; i < paths.Length; i++)
        {
            var r = doc.RootElement[i];
            Assert.Equal(inProc[i].PredictedClass[0], r.GetProperty("Label").GetString());
            foreach (var s in r.GetProperty("Top").EnumerateArray())
            {
                int k = Array.IndexOf(Fixtures.IconClasses, s.GetProperty("Label").GetString());
                freshDiff = Math.Max(freshDiff, Math.Abs(s.GetProperty("Score").GetSingle() - inProc[i].Score[k]));
            }
        }
        output.WriteLine($"fresh-process PredictionEngine vs in-process: max |Score diff| = {freshDiff:G3}");
        Assert.True(freshDiff <= 1e-5, $"fresh process differs by {freshDiff}");
        foreach (var t in (IEnumerable<ITransformer>)loaded) (t as IDisposable)?.Dispose();
        Directory.Delete(dir, true);
    }

    private static int TensorIndexOfMax(ReadOnlySpan<float> v) => System.Numerics.Tensors.TensorPrimitives.IndexOfMax(v);

    [Fact]
    public void VitSequenceTokenZipEqualsInProcessModel()
    {
        var ml = new MLContext(42);
        var options = new OnnxImageEncoderOptions
        {
            Name = "tiny-vit", ModelBytes = TinyVit.Build(dim: 32, seed: 5), InputName = "pixel_values",
            PooledOutputName = "last_hidden_state", TokenOutputName = "last_hidden_state", TokenKind = ImageTokenKind.VitSequence, ClsTokenIndex = 0,
        };
        var encoder = new OnnxMLNetImageEncoder(options);
        Assert.Equal(32, encoder.Dimension);
        Assert.Equal((256, 1), encoder.TokenGrid);
        using var model = TokenModel(32, 32);
        var classes = Classes(model);
        var paths = Fixtures.Images.Take(4).Select(Fixtures.Image).ToArray();
        var reference = Reference(ml, encoder, model, classes, paths);

        // The stock-transform encoder equals OnnxImageEncoder (the training-time encoder) on the same 224x224 pixels.
        using (var direct = new OnnxImageEncoder(options))
        {
            var white = new SkiaSharp.SKBitmap(224, 224);
            white.Erase(SkiaSharp.SKColors.White);
            var e = direct.EncodeBitmaps([white], withTokens: true);
            var zipFeatures = encoder.CreateTokenEstimator(ml.Transforms, PooledCol, TokensCol, "ImagePath", null);
            var whitePath = Path.Combine(Directory.CreateTempSubdirectory("white").FullName, "white.png");
            using (var f = File.Create(whitePath)) white.Encode(f, SkiaSharp.SKEncodedImageFormat.Png, 100);
            var fitted = zipFeatures.Fit(Paths(ml, [whitePath]));
            var row = ml.Data.CreateEnumerable<FeatureRow>(fitted.Transform(Paths(ml, [whitePath])), false).Single();
            Assert.True(MaxAbsDiff(row.Pooled, e.Pooled.Row(0)) <= 1e-5, "pooled (CLS) differs from OnnxImageEncoder");
            Assert.True(MaxAbsDiff(row.Tokens, e.Tokens!.Item(0)) <= 1e-5, "patch tokens differ from OnnxImageEncoder");
            foreach (var x in (IEnumerable<ITransformer>)fitted) (x as IDisposable)?.Dispose();
        }

        var dir = Directory.CreateTempSubdirectory("vit-token-zip").FullName;
        var zip = Path.Combine(dir, "vit.zip");
        ZeroShotClassifierIO.BuildAndSave(ml, model, classes, zip, new ZeroShotClassifierEstimator.Options { ImageEncoder = encoder });
        var loaded = ml.Model.Load(zip, out _);
        using var engine = ml.Model.CreatePredictionEngine<ZeroShotImageInput, AlignedRow>(loaded);
        float alignedDiff = 0, scoreDiff = 0;
        for (int i = 0; i < paths.Length; i++)
        {
            var p = engine.Predict(new ZeroShotImageInput { ImagePath = paths[i] });
            alignedDiff = Math.Max(alignedDiff, MaxAbsDiff(p.Aligned, reference.Aligned.Row(i)));
            scoreDiff = Math.Max(scoreDiff, MaxAbsDiff(p.Score, reference.Scores.Row(i)));
        }
        output.WriteLine($"ViT-shaped token zip vs in-process model over {paths.Length} images: max |image_aligned diff| = {alignedDiff:G3}, max |Score diff| = {scoreDiff:G3}");
        Assert.True(alignedDiff <= 1e-5 && scoreDiff <= 1e-5, $"aligned {alignedDiff}, score {scoreDiff}");
        foreach (var t in (IEnumerable<ITransformer>)loaded) (t as IDisposable)?.Dispose();
        Directory.Delete(dir, true);
    }

    /// <summary>The project's ViT stand-in (DINOv2 I/O, 256 then centre 224) with the paper's token projector: zip vs
    /// in-process and a fresh process, for CLS and concat[CLS, mean-patch] pooling.</summary>
    [Theory]
    [InlineData(ImagePooling.Cls)]
    [InlineData(ImagePooling.ClsMeanPatch)]
    public void VitStandInTokenZipEqualsInProcessModelAndFreshProcess(ImagePooling pooling)
    {
        var ml = new MLContext(42);
        var options = StandInKit.VitOptions(pooling);
        var encoder = new OnnxMLNetImageEncoder(options);
        using var direct = new OnnxImageEncoder(options);
        Assert.Equal(direct.Identity.Dimension, encoder.Dimension);
        Assert.Equal(direct.Identity.TokenDimension, encoder.TokenDimension);
        Assert.Equal(direct.TokenCount, encoder.TokenGrid.Height * encoder.TokenGrid.Width);
        using var model = TokenModel(encoder.Dimension, encoder.TokenDimension);
        var classes = Classes(model);
        var paths = Fixtures.Images.Select(Fixtures.Image).ToArray();
        var reference = Reference(ml, encoder, model, classes, paths);
        var dir = Directory.CreateTempSubdirectory("standin-zip").FullName;
        var zip = Path.Combine(dir, "vit.zip");
        ZeroShotClassifierIO.BuildAndSave(ml, model, classes, zip, new ZeroShotClassifierEstimator.Options { ImageEncoder = encoder });
        var loaded = ml.Model.Load(zip, out _);
        using var engine = ml.Model.CreatePredictionEngine<ZeroShotImageInput, AlignedRow>(loaded);
        float alignedDiff = 0, scoreDiff = 0;
        var inProc = new List<float[]>();
        for (int i = 0; i < paths.Length; i++)
        {
            var p = engine.Predict(new ZeroShotImageInput { ImagePath = paths[i] });
            inProc.Add(p.Score.ToArray());
            alignedDiff = Math.Max(alignedDiff, MaxAbsDiff(p.Aligned, reference.Aligned.Row(i)));
            scoreDiff = Math.Max(scoreDiff, MaxAbsDiff(p.Score, reference.Scores.Row(i)));
        }
        // The training-time encoder (SkiaSharp resize) sees slightly different pixels than ML.NET's resize: report it.
        var trainingTime = model.ProjectImages(direct.EncodeBatch(paths, withTokens: true).Pooled, direct.EncodeBatch(paths, withTokens: true).Tokens);
        float resizeGap = 0;
        for (int i = 0; i < paths.Length; i++) resizeGap = Math.Max(resizeGap, MaxAbsDiff(trainingTime.Row(i), reference.Aligned.Row(i)));
        output.WriteLine($"ViT stand-in ({pooling}) token zip vs in-process model over {paths.Length} images: max |image_aligned diff| = {alignedDiff:G3}, max |Score diff| = {scoreDiff:G3}; " +
                         $"OnnxImageEncoder (SkiaSharp resize) vs zip pixels: max |image_aligned diff| = {resizeGap:G3}");
        Assert.True(alignedDiff <= 1e-5 && scoreDiff <= 1e-5, $"aligned {alignedDiff}, score {scoreDiff}");

        using var doc = CliProcess.PredictJson(zip, paths);
        float freshDiff = 0;
        for (int i = 0; i < paths.Length; i++)
            foreach (var s in doc.RootElement[i].GetProperty("Top").EnumerateArray())
                freshDiff = Math.Max(freshDiff, Math.Abs(s.GetProperty("Score").GetSingle() - inProc[i][Array.IndexOf(Fixtures.IconClasses, s.GetProperty("Label").GetString())]));
        output.WriteLine($"fresh-process PredictionEngine vs in-process: max |Score diff| = {freshDiff:G3}");
        Assert.True(freshDiff <= 1e-5, $"fresh process differs by {freshDiff}");
        foreach (var t in (IEnumerable<ITransformer>)loaded) (t as IDisposable)?.Dispose();
        Directory.Delete(dir, true);
    }

    [Fact]
    public void TokenProjectorNeedsATokenEncoder()
    {
        var ml = new MLContext(42);
        using var model = TokenModel(512, 512);
        var classes = Classes(model);
        var ex = Assert.Throws<ArgumentException>(() => new ZeroShotClassifierEstimator(ml, new ZeroShotClassifierEstimator.Options
        {
            Projector = model, Classes = classes, ImageEncoder = new PooledOnly(),
        }));
        Assert.Contains("cannot emit tokens", ex.Message);
        using var narrow = TokenModel(512, 256);
        var ex2 = Assert.Throws<ArgumentException>(() => new ZeroShotClassifierEstimator(ml, new ZeroShotClassifierEstimator.Options { Projector = narrow, Classes = Classes(narrow) }));
        Assert.Contains("width 256", ex2.Message);
    }

    private sealed class PooledOnly : IMLNetImageEncoder
    {
        public string Name => "pooled-only";
        public int Dimension => 512;
        public IEstimator<ITransformer> CreateEstimator(TransformsCatalog transforms, string outputColumnName, string imagePathColumnName, string? imageFolder)
            => new ResNet18MLNetImageEncoder().CreateEstimator(transforms, outputColumnName, imagePathColumnName, imageFolder);
    }

    /// <summary>PredictionEngine latency of the token zip against the pooled zip, same process, same images, interleaved.</summary>
    [Fact]
    public void TokenZipLatencyAgainstPooledZip()
    {
        var ml = new MLContext(42);
        using var token = TokenModel(512, 512);
        using var pooled = new AlignedModel(ProjectorOptions.PooledMlp(64), 512, 384, seed: 3);
        var dir = Directory.CreateTempSubdirectory("zip-latency").FullName;
        string tokenZip = Path.Combine(dir, "token.zip"), pooledZip = Path.Combine(dir, "pooled.zip");
        ZeroShotClassifierIO.BuildAndSave(ml, token, Classes(token), tokenZip);
        ZeroShotClassifierIO.BuildAndSave(ml, pooled, Classes(pooled), pooledZip);
        var tokenModel = ml.Model.Load(tokenZip, out _);
        var pooledModel = ml.Model.Load(pooledZip, out _);
        using var te = ml.Model.CreatePredictionEngine<ZeroShotImageInput, ZeroShotPrediction>(tokenModel);
        using var pe = ml.Model.CreatePredictionEngine<ZeroShotImageInput, ZeroShotPrediction>(pooledModel);
        var inputs = Fixtures.Images.Select(i => new ZeroShotImageInput { ImagePath = Fixtures.Image(i) }).ToArray();
        for (int w = 0; w < 2; w++) foreach (var x in inputs) { te.Predict(x); pe.Predict(x); }
        var tt = new List<double>(); var pt = new List<double>();
        var sw = new Stopwatch();
        for (int r = 0; r < 5; r++)
            foreach (var x in inputs)
            {
                sw.Restart(); te.Predict(x); tt.Add(sw.Elapsed.TotalMilliseconds);
                sw.Restart(); pe.Predict(x); pt.Add(sw.Elapsed.TotalMilliseconds);
            }
        double Median(List<double> v) { var s = v.Order().ToList(); return (s[(s.Count - 1) / 2] + s[s.Count / 2]) / 2; }
        double ratio = Median(tt) / Median(pt);
        output.WriteLine($"PredictionEngine latency over {tt.Count} predictions each: token zip median {Median(tt):F2} ms, pooled zip median {Median(pt):F2} ms, ratio {ratio:F3}");
        // The token zip adds one output to the same ResNet-18 run and a 49-token projector: it must stay the same order of cost.
        Assert.InRange(ratio, 0.5, 3.0);
        foreach (var t in ((IEnumerable<ITransformer>)tokenModel).Concat((IEnumerable<ITransformer>)pooledModel)) (t as IDisposable)?.Dispose();
        Directory.Delete(dir, true);
    }

    [Fact]
    public void ComposerFusesProjectorAndHead()
    {
        using var model = TokenModel(512, 512);
        var classes = Classes(model);
        var projector = model.ExportImageProjectorOnnx(ImageTokenLayout.Nchw);
        var head = ZeroShotHead.ExportOnnx(classes, model.LogitScale);
        var fused = OnnxGraphEditor.Parse(OnnxGraphComposer.Chain(projector, head, "head/"));
        Assert.Equal(new[] { ProjectorOnnxNames.ImageEmbedding, ProjectorOnnxNames.ImageTokens }, OnnxGraphEditor.InputNames(fused));
        Assert.Equal(new[] { ProjectorOnnxNames.ImageAligned, "Score", ZeroShotHeadNames.PredictedClass }, fused.Graph.Output.Select(o => o.Name));
        Assert.Contains(fused.Graph.Node, n => n.Name == "mlnet.Score.SlotNames");
        Assert.Throws<ArgumentException>(() => OnnxGraphComposer.Chain(head, projector));
    }
}

/// <summary>A small ViT-shaped ONNX graph for tests (DINOv2's I/O signature): pixel_values [N, 3, 224, 224] -> patch
/// conv 14x14 stride 14 -> 256 tokens of D -> prepend CLS -> + position embeddings -> LayerNorm -> last_hidden_state
/// [N, 257, D]. Seeded weights.</summary>
internal static class TinyVit
{
    public static byte[] Build(int dim, int seed)
    {
        var rng = new Random(seed);
        float[] R(int n, float s) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1) * s).ToArray();
        var g = new OnnxGraphBuilder("tiny_vit", 17);
        var x = g.Input("pixel_values", "batch", 3, 224, 224);
        var w = g.Constant("patch_w", R(dim * 3 * 14 * 14, 0.05f), dim, 3, 14, 14);
        var b = g.Constant("patch_b", R(dim, 0.1f), dim);
        var conv = g.Op("Conv", [x, w, b], new Dictionary<string, object> { ["strides"] = new long[] { 14, 14 }, ["kernel_shape"] = new long[] { 14, 14 } });
        var flat = g.Op("Reshape", conv, g.ConstantInt64("flat_shape", [0, dim, 256], 3));
        var seq = g.Op("Transpose", [flat], new Dictionary<string, object> { ["perm"] = new long[] { 0, 2, 1 } });
        var batch = g.Op("Gather", [g.Op("Shape", x), g.ConstantInt64("zero", [0], 1)], new Dictionary<string, object> { ["axis"] = 0L });
        var clsShape = g.Op("Concat", [batch, g.ConstantInt64("one_dim", [1, dim], 2)], new Dictionary<string, object> { ["axis"] = 0L });
        var cls = g.Op("Expand", g.Constant("cls", R(dim, 1f), 1, 1, dim), clsShape);
        var all = g.Op("Concat", [cls, seq], new Dictionary<string, object> { ["axis"] = 1L });
        var pos = g.Op("Add", all, g.Constant("pos", R(257 * dim, 0.5f), 1, 257, dim));
        var ln = g.LayerNorm(pos, R(dim, 1f), R(dim, 0.2f), 1e-6f, "norm");
        g.Node("Identity", [ln], outputs: ["last_hidden_state"]);
        g.Output("last_hidden_state", "batch", 257, dim);
        return g.ToBytes();
    }
}
