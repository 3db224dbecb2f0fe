using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLNet.Align.Embeddings;
using MLNet.Align.ZeroShot;
using Xunit.Abstractions;
using MLNet.Align.Prompts;

namespace MLNet.Align.Tests.ZeroShot;

/// <summary>Shared, expensive state: class embeddings from real MiniLM, built once.</summary>
public sealed class ZeroShotFixture
{
    internal SeededLinearProjector Projector { get; } = new();
    public ClassEmbeddings Classes { get; }
    public ZeroShotFixture()
    {
        Classes = ClassEmbeddingBuilder.Build(Fixtures.IconClasses, PromptTemplates.IconsAndClipArt, FixtureFeatures.MiniLM, Projector);
    }
}

public class ZeroShotChainTests(ZeroShotFixture fx, ITestOutputHelper output) : IClassFixture<ZeroShotFixture>
{
    private sealed class PixelRow
    {
        [ColumnName(ResNet18MLNetImageEncoder.PixelsColumn)] public float[] Argb { get; set; } = [];
    }

    private ZeroShotClassifierEstimator Estimator(MLContext ml) => ml.Alignment.ZeroShotClassifier("PredictedLabel", "ImagePath", fx.Projector, fx.Classes);

    private static IDataView Paths(MLContext ml, IEnumerable<string> paths)
        => ml.Data.LoadFromEnumerable(paths.Select(p => new ZeroShotImageInput { ImagePath = p }).ToList());

    [Fact]
    public void PredictionEngineEqualsDirectComputation()
    {
        var ml = new MLContext(42);
        var model = Estimator(ml).Fit(Paths(ml, []));
        using var engine = ml.Model.CreatePredictionEngine<ZeroShotImageInput, ZeroShotPrediction>(model);
        var slotNames = ZeroShotModel.ClassNames(engine.OutputSchema);
        Assert.Equal(Fixtures.IconClasses, slotNames);

        // Direct path: ML.NET stock pixel extraction only, then ONNX Runtime on the two ResNet18 graphs, then the
        // managed projector and managed head.
        var enc = new ResNet18MLNetImageEncoder();
        var pixelsPipe = ml.Transforms.LoadImages(ResNet18MLNetImageEncoder.ImageColumn, null, "ImagePath")
            .Append(ml.Transforms.ResizeImages(ResNet18MLNetImageEncoder.ImageColumn, 224, 224))
            .Append(ml.Transforms.ExtractPixels(ResNet18MLNetImageEncoder.PixelsColumn, ResNet18MLNetImageEncoder.ImageColumn,
                Microsoft.ML.Transforms.Image.ImagePixelExtractingEstimator.ColorBits.All, outputAsFloatArray: true));
        var paths = Fixtures.Images.Select(Fixtures.Image).ToArray();
        var pixelRows = ml.Data.CreateEnumerable<PixelRow>(pixelsPipe.Fit(Paths(ml, paths)).Transform(Paths(ml, paths)), false).ToList();
        using var prep = new InferenceSession(enc.PreprocessModelPath);
        using var net = new InferenceSession(enc.ModelPath);
        var features = EmbeddingMatrix.Zeros(paths.Length, 512);
        int alphaPixels = 0;
        for (int i = 0; i < paths.Length; i++)
        {
            var argb = pixelRows[i].Argb;
            int hw = 224 * 224;
            var rgb = new float[3 * hw];
            for (int p = 0; p < hw; p++)
            {
                float a = argb[p];
                if (a < 255) alphaPixels++;
                for (int ch = 0; ch < 3; ch++)
                {
                    float v = argb[(ch + 1) * hw + p];
                    Assert.True(v <= a + 1e-3, $"pixel not premultiplied: colour {v} > alpha {a} in {paths[i]}");
                    rgb[ch * hw + p] = v + 255f - a;
                }
            }
            using var pre = prep.Run([NamedOnnxValue.CreateFromTensor("OriginalInput", new DenseTensor<float>(rgb, [1, 3, 224, 224]))]);
            var preT = pre.First().AsTensor<float>().ToArray();
            using var feat = net.Run([NamedOnnxValue.CreateFromTensor("Input247", new DenseTensor<float>(preT, [1, 3, 224, 224]))]);
            feat.First(v => v.Name == "Pooling395_Output_0").AsTensor<float>().ToArray().AsSpan().CopyTo(features.Row(i));
        }
        Assert.True(alphaPixels > 1000, $"fixtures should include transparent pixels, saw {alphaPixels}");
        var aligned = fx.Projector.ProjectImages(features);
        var (scores, predicted) = ZeroShotHead.Score(aligned, fx.Classes, fx.Projector.LogitScale);

        int correct = 0;
        for (int i = 0; i < paths.Length; i++)
        {
            var p = engine.Predict(new ZeroShotImageInput { ImagePath = paths[i] });
            Assert.Equal(fx.Classes.Count, p.Score.Length);
            Assert.Equal(Fixtures.IconClasses[predicted[i]], p.Label);
            for (int k = 0; k < fx.Classes.Count; k++)
                Assert.True(Math.Abs(p.Score[k] - scores.Row(i)[k]) < 1e-4, $"{paths[i]} class {k}: chain {p.Score[k]} vs direct {scores.Row(i)[k]}");
            if (predicted[i] == i) correct++;
            output.WriteLine($"{Path.GetFileName(paths[i])}: {p.Label} ({p.Score.Max():F3})");
        }
        output.WriteLine($"test-double projector top-1 on {paths.Length} icons: {correct}/{paths.Length} (random map; not a quality number)");
        foreach (var t in model) (t as IDisposable)?.Dispose();
    }

    [Fact]
    public void SavedZipGivesSameLabelAndScoresInFreshProcess()
    {
        var ml = new MLContext(42);
        var dir = Directory.CreateTempSubdirectory("zs-roundtrip").FullName;
        var zip = Path.Combine(dir, "classifier.zip");
        ZeroShotClassifierIO.BuildAndSave(ml, fx.Projector, fx.Classes, zip);
        Assert.Empty(Directory.GetFiles(dir, "*.tmp-*"));
        var paths = new[] { Fixtures.Image("tux_space_moon_3qt.png"), Fixtures.Image("emoji_1f347.png") };

        // In process: load the zip (not the fitted chain) and predict.
        var loaded = ml.Model.Load(zip, out var schema);
        using var engine = ml.Model.CreatePredictionEngine<ZeroShotImageInput, ZeroShotPrediction>(loaded);
        var inProc = paths.Select(p => engine.Predict(new ZeroShotImageInput { ImagePath = p })).ToList();

        // Fresh process: the CLI's predict command on the same zip.
        using var doc = CliProcess.PredictJson(zip, paths);
        var names = ZeroShotModel.ClassNames(engine.OutputSchema);
        for (int i = 0; i < paths.Length; i++)
        {
            var r = doc.RootElement[i];
            Assert.Equal(inProc[i].Label, r.GetProperty("Label").GetString());
            foreach (var s in r.GetProperty("Top").EnumerateArray())
            {
                int k = Array.IndexOf(names, s.GetProperty("Label").GetString());
                Assert.True(Math.Abs(s.GetProperty("Score").GetSingle() - inProc[i].Score[k]) < 1e-5);
            }
            Assert.Equal(fx.Classes.Count, r.GetProperty("Top").GetArrayLength());
        }
        output.WriteLine(doc.RootElement.ToString());

        // The plain ML.NET example (no MLNet.Align reference) reads the same zip; the solution build builds it in the
        // same configuration as this test assembly.
        var example = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, $"../../../../../../examples/LoadZeroShotZip/bin/{BuildConfiguration}/net10.0/LoadZeroShotZip.dll"));
        Assert.True(File.Exists(example), $"examples/LoadZeroShotZip is not built at {example}: build the solution (dotnet test MLNet.Align.sln builds it).");
        var epsi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { example, zip }.Concat(paths)) epsi.ArgumentList.Add(a);
        using (var ep = Process.Start(epsi)!)
        {
            var eout = ep.StandardOutput.ReadToEnd();
            var eerr = ep.StandardError.ReadToEnd();
            ep.WaitForExit();
            Assert.True(ep.ExitCode == 0, $"LoadZeroShotZip failed: {eerr}");
            for (int i = 0; i < paths.Length; i++) Assert.Contains($"{paths[i]}: {inProc[i].Label}", eout);
            output.WriteLine(eout);
        }
        foreach (var t in (IEnumerable<ITransformer>)loaded) (t as IDisposable)?.Dispose();
        Directory.Delete(dir, true);
    }

    private sealed class LabelledImage
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
    }

    private sealed class KeyValue
    {
        public string Name { get; set; } = "";
    }

    [Fact]
    public void ZipOutputHasKeyTypedPredictedLabelThatMulticlassEvaluateReads()
    {
        // A real labelled set: the first 40 Fashion-MNIST fixture digits as PNGs, evaluated through the saved zip.
        var ml = new MLContext(42);
        var dir = Directory.CreateTempSubdirectory("zs-evaluate").FullName;
        var labelled = Path.Combine(AppContext.BaseDirectory, "fixtures", "labelled");
        var set = MLNet.Align.Demo.Data.IdxReader.ReadLabelled(Path.Combine(labelled, "fashion-mnist-t10k-300-images-idx3-ubyte"),
            Path.Combine(labelled, "fashion-mnist-t10k-300-labels-idx1-ubyte"), MLNet.Align.Demo.Data.IdxReader.FashionMnistClassNames, maxCount: 40);
        MLNet.Align.Demo.Data.ImageFolderExport.Export(set, Path.Combine(dir, "fashion"));
        var folder = ImageFolderDataset.Load(Path.Combine(dir, "fashion"));
        var classes = ClassEmbeddingBuilder.Build(folder.ClassNames, PromptTemplates.SimpleImageNet, FixtureFeatures.MiniLM, fx.Projector);
        var zip = Path.Combine(dir, "fashion.zip");
        ZeroShotClassifierIO.BuildAndSave(ml, fx.Projector, classes, zip);

        var model = ml.Model.Load(zip, out _);
        var rows = folder.Items.Select(i => new LabelledImage { ImagePath = i.Path, Label = folder.ClassNames[i.Label] }).ToList();
        var keys = ml.Data.LoadFromEnumerable(folder.ClassNames.Select(n => new KeyValue { Name = n }));
        var scored = ml.Transforms.Conversion.MapValueToKey("Label", "Label", keyData: keys).Fit(ml.Data.LoadFromEnumerable(rows))
            .Transform(model.Transform(ml.Data.LoadFromEnumerable(rows)));

        var predicted = scored.Schema[ZeroShotHeadNames.PredictedLabel];
        Assert.True(predicted.Type is VectorDataViewType { ItemType: KeyDataViewType { Count: 10 } }, $"PredictedLabel type {predicted.Type}");
        VBuffer<ReadOnlyMemory<char>> keyValues = default;
        predicted.GetKeyValues(ref keyValues);
        Assert.Equal(folder.ClassNames, keyValues.DenseValues().Select(v => v.ToString()).ToArray());

        var metrics = ml.MulticlassClassification.Evaluate(scored, "Label", ZeroShotHeadNames.Score, ZeroShotHeadNames.PredictedLabel);
        var scores = scored.GetColumn<float[]>(ZeroShotHeadNames.Score).ToList();
        var names = scored.GetColumn<string[]>(ZeroShotHeadNames.PredictedClass).ToList();
        var labelKeys = ml.Transforms.Conversion.MapKeyToValue("PredictedName", ZeroShotHeadNames.PredictedLabel).Fit(scored).Transform(scored)
            .GetColumn<string[]>("PredictedName").ToList();
        int correct = 0;
        for (int i = 0; i < rows.Count; i++)
        {
            int argmax = Array.IndexOf(scores[i], scores[i].Max());
            Assert.Equal(folder.ClassNames[argmax], names[i][0]);
            Assert.Equal(names[i][0], labelKeys[i][0]);
            if (folder.Items[i].Label == argmax) correct++;
        }
        Assert.Equal((double)correct / rows.Count, metrics.MicroAccuracy, 12);
        output.WriteLine($"zip on 40 Fashion-MNIST images, random projector: micro-accuracy {metrics.MicroAccuracy:P1} ({correct}/40)");
        foreach (var t in (IEnumerable<ITransformer>)model) (t as IDisposable)?.Dispose();
        Directory.Delete(dir, true);
    }

    [Fact]
    public void UnknownImagePathFailsWithClearError()
    {
        var ml = new MLContext(42);
        var model = Estimator(ml).Fit(Paths(ml, []));
        using var engine = ml.Model.CreatePredictionEngine<ZeroShotImageInput, ZeroShotPrediction>(model);
        var missing = Path.Combine(Fixtures.Dir, "no_such_image.png");
        var ex = Assert.ThrowsAny<Exception>(() => engine.Predict(new ZeroShotImageInput { ImagePath = missing }));
        var all = ex.ToString();
        Assert.Contains("no_such_image.png", all);
        var cliEx = Assert.Throws<FileNotFoundException>(() => MLNet.Align.Cli.Commands.PredictCommand.Run(Path.Combine(Fixtures.Dir, "nope.zip"), [missing], 5));
        Assert.Contains("nope.zip", cliEx.Message);
    }

    [Fact]
    public void WrongInputColumnTypeIsRejected()
    {
        var ml = new MLContext(42);
        var data = ml.Data.LoadFromEnumerable(new[] { new { ImagePath = 3f } }.Select(x => new FloatRow { ImagePath = x.ImagePath }).ToList());
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Estimator(ml).Fit(data));
        Assert.Contains("ImagePath", ex.Message);
    }

    private sealed class FloatRow { public float ImagePath { get; set; } }

#if DEBUG
    private const string BuildConfiguration = "Debug";
#else
    private const string BuildConfiguration = "Release";
#endif
}
