using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MLNet.Align.Embeddings;
using MLNet.Align.Projection;
using static MLNet.Align.Tests.Projection.ProjectorTests;
using static MLNet.Align.Tests.Shared.Vectors;

namespace MLNet.Align.Tests.Projection;

[Collection("torch-projection")]
public class ExportAndPersistenceTests
{
    private static AlignedModel TrainedFewSteps(ProjectorOptions projector, int epochs = 2)
    {
        var options = new AlignmentOptions
        {
            Projector = projector,
            Training = new AlignmentTrainingOptions { Epochs = epochs, BatchSize = 16, WarmupSteps = 1, ValidationFraction = 0, TorchThreads = 1 },
        };
        return new AlignmentTrainer(options).Fit(FixtureFeatures.AlignmentData).Model;
    }

    private static DenseTensor<float> Tensor(float[] data, params int[] dims) => new(data, dims);

    [Fact]
    public void OnnxExportMatchesTorchSharpForPooledAndTokenModes()
    {
        var batch = FixtureFeatures.AlignmentData.GetBatches(12, withTokens: true).Skip(1).First();
        int n = batch.Indices.Length;
        foreach (var projector in new[] { ProjectorOptions.PooledMlp(128), ProjectorOptions.Paper(128),
                     new ProjectorOptions { ImageLocal = ProjectorKind.Linear, ImageGlobal = ProjectorKind.None, TextLocal = ProjectorKind.Mlp, TextGlobal = ProjectorKind.Linear, EmbeddingDimension = 96 } })
        {
            using var model = TrainedFewSteps(projector, epochs: 1);
            var expectedImage = model.ProjectImages(batch.ImagePooled, batch.ImageTokens).Data;
            var expectedText = model.ProjectTexts(batch.TextPooled, batch.TextTokens).Data;

            var imageInputs = new List<NamedOnnxValue> { NamedOnnxValue.CreateFromTensor(ProjectorOnnxNames.ImageEmbedding, Tensor(batch.ImagePooled.Data, n, 512)) };
            if (model.UsesImageTokens) imageInputs.Add(NamedOnnxValue.CreateFromTensor(ProjectorOnnxNames.ImageTokens, Tensor(batch.ImageTokens!.Data, n, 49, 512)));
            using (var s = new InferenceSession(model.ExportImageProjectorOnnx()))
            using (var r = s.Run(imageInputs))
                Assert.True(MaxAbsDiff(expectedImage, r.Single(x => x.Name == ProjectorOnnxNames.ImageAligned).AsEnumerable<float>().ToArray()) <= 1e-5f, $"image {projector}");

            if (model.UsesImageTokens)
            {
                // The same tokens as a CNN feature map [N, C, 7, 7]: the graph flattens H*W itself.
                var nchw = new float[n * 512 * 49];
                for (int i = 0; i < n; i++) for (int k = 0; k < 49; k++) for (int c = 0; c < 512; c++)
                    nchw[(i * 512 + c) * 49 + k] = batch.ImageTokens!.Data[(i * 49 + k) * 512 + c];
                using var s = new InferenceSession(model.ExportImageProjectorOnnx(ImageTokenLayout.Nchw));
                using var r = s.Run(new[]
                {
                    NamedOnnxValue.CreateFromTensor(ProjectorOnnxNames.ImageEmbedding, Tensor(batch.ImagePooled.Data, n, 512)),
                    NamedOnnxValue.CreateFromTensor(ProjectorOnnxNames.ImageTokens, Tensor(nchw, n, 512, 7, 7)),
                });
                Assert.True(MaxAbsDiff(expectedImage, r.Single().AsEnumerable<float>().ToArray()) <= 1e-5f, $"image nchw {projector}");
            }

            var textInputs = new List<NamedOnnxValue> { NamedOnnxValue.CreateFromTensor(ProjectorOnnxNames.TextEmbedding, Tensor(batch.TextPooled.Data, n, 384)) };
            if (model.UsesTextTokens)
            {
                var t = batch.TextTokens!;
                var mask = new float[n * t.MaxTokens];
                for (int i = 0; i < n; i++) mask.AsSpan(i * t.MaxTokens, t.Lengths[i]).Fill(1f);
                textInputs.Add(NamedOnnxValue.CreateFromTensor(ProjectorOnnxNames.TextTokens, Tensor(t.Data, n, t.MaxTokens, 384)));
                textInputs.Add(NamedOnnxValue.CreateFromTensor(ProjectorOnnxNames.TextMask, Tensor(mask, n, t.MaxTokens)));
            }
            using (var s = new InferenceSession(model.ExportTextProjectorOnnx()))
            using (var r = s.Run(textInputs))
                Assert.True(MaxAbsDiff(expectedText, r.Single().AsEnumerable<float>().ToArray()) <= 1e-5f, $"text {projector}");
        }
    }

    [Fact]
    public void BundleRoundTripGivesIdenticalProjectionsAndClearErrors()
    {
        var root = Path.Combine(Path.GetTempPath(), $"proj-bundle-{Guid.NewGuid():N}");
        try
        {
            var batch = FixtureFeatures.AlignmentData.GetBatches(20, withTokens: true).First();
            using var model = TrainedFewSteps(ProjectorOptions.Paper(64));
            model.ImageEncoder = new MLNet.Align.EncoderIdentity("resnet18", new string('a', 64), 512, 512);
            var dir = Path.Combine(root, "bundle");
            model.Save(dir);
            model.Save(dir); // replacing an existing bundle works and leaves no temp directories
            Assert.Equal(new[] { "bundle" }, Directory.GetDirectories(root).Select(Path.GetFileName));
            using (var loaded = AlignedModel.Load(dir))
            {
                Assert.Equal(model.ProjectImages(batch.ImagePooled, batch.ImageTokens).Data, loaded.ProjectImages(batch.ImagePooled, batch.ImageTokens).Data);
                Assert.Equal(model.ProjectTexts(batch.TextPooled, batch.TextTokens).Data, loaded.ProjectTexts(batch.TextPooled, batch.TextTokens).Data);
                Assert.Equal(model.Temperature, loaded.Temperature);
                Assert.Equal("resnet18", loaded.ImageEncoder!.Name);
                Assert.Equal(2, loaded.Training!.EpochsCompleted);
            }

            var manifest = Path.Combine(dir, AlignedModel.ManifestFile);
            var json = File.ReadAllText(manifest);
            File.WriteAllText(manifest, json.Replace("\"FormatVersion\": 1", "\"FormatVersion\": 99"));
            Assert.Contains("version 99", Assert.Throws<InvalidDataException>(() => AlignedModel.Load(dir)).Message);
            // Widths that do not match the stored weights: the weights file is named.
            File.WriteAllText(manifest, json.Replace("\"ImageDimension\": 512", "\"ImageDimension\": 256"));
            Assert.Contains(AlignedModel.WeightsFile, Assert.Throws<InvalidDataException>(() => AlignedModel.Load(dir)).Message);
            File.WriteAllText(manifest, json);
            File.Delete(Path.Combine(dir, AlignedModel.TextOnnxFile));
            Assert.Contains(AlignedModel.TextOnnxFile, Assert.Throws<FileNotFoundException>(() => AlignedModel.Load(dir)).Message);
            Assert.Throws<DirectoryNotFoundException>(() => AlignedModel.Load(Path.Combine(root, "missing")));
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }

    [Fact]
    public void ResumeAfterInterruptionReachesBitIdenticalWeights()
    {
        var root = Path.Combine(Path.GetTempPath(), $"proj-resume-{Guid.NewGuid():N}");
        try
        {
            AlignmentOptions Options(string dir) => new()
            {
                Projector = ProjectorOptions.Paper(48) with { Dropout = 0.2f },
                Training = new AlignmentTrainingOptions
                {
                    Epochs = 4, BatchSize = 12, WarmupSteps = 2, ValidationFraction = 0.25, CheckpointDirectory = dir,
                    CheckpointEverySteps = 2, TorchThreads = 1, Seed = 11, MaxGradientNorm = 1.0,
                },
            };
            var data = FixtureFeatures.AlignmentData;
            var full = new AlignmentTrainer(Options(Path.Combine(root, "full"))).Fit(data);
            byte[] expected = full.Model.GetWeights();

            // Kill-like interruption: cancel at step 7 without the on-cancel checkpoint, so the resumed run restarts
            // from the periodic one at step 6 and must replay step 7 identically.
            foreach (bool checkpointOnCancel in new[] { false, true })
            {
                var dir = Path.Combine(root, $"cut-{checkpointOnCancel}");
                using var cts = new CancellationTokenSource();
                var options = Options(dir) with { Training = Options(dir).Training with { CheckpointOnCancel = checkpointOnCancel } };
                var progress = new SyncProgress<TrainingProgress>(p => { if (p.Step == 7 && p.Validation is null) cts.Cancel(); });
                Assert.ThrowsAny<OperationCanceledException>(() => new AlignmentTrainer(options) { Progress = progress }.Fit(data, null, cts.Token));
                Assert.True(AlignmentTrainer.HasCheckpoint(dir));
                var resumed = new AlignmentTrainer(options).Resume(data);
                Assert.Equal(expected, resumed.Model.GetWeights());
                Assert.Equal(full.History.Steps.Select(s => s.Loss), resumed.History.Steps.Select(s => s.Loss));
                Assert.Equal(full.History.BestEpoch, resumed.History.BestEpoch);
                resumed.Model.Dispose();
            }
            // Different options cannot silently continue someone else's run.
            var other = Options(Path.Combine(root, "full")) with { Training = Options(Path.Combine(root, "full")).Training with { LearningRate = 5e-3 } };
            Assert.Contains("different alignment options", Assert.Throws<InvalidDataException>(() => new AlignmentTrainer(other).Resume(data)).Message);
            full.Model.Dispose();
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }

    private sealed class PairRow
    {
        [VectorType(512)] public float[] ImageEmbedding { get; set; } = [];
        [VectorType(384)] public float[] TextEmbedding { get; set; } = [];
    }

    private sealed class ImageOnlyRow
    {
        [VectorType(512)] public float[] ImageEmbedding { get; set; } = [];
    }

    [Fact]
    public void EstimatorTrainsOnAnIDataViewAndAddsAlignedColumns()
    {
        var d = FixtureFeatures.AlignmentData.GetBatches(1000).Single();
        var rows = Enumerable.Range(0, d.Indices.Length).Select(i => new PairRow { ImageEmbedding = d.ImagePooled.Row(i).ToArray(), TextEmbedding = d.TextPooled.Row(i).ToArray() }).ToList();
        var ml = new MLContext(seed: 1);
        var logged = new List<string>();
        ml.Log += (_, e) => { lock (logged) logged.Add(e.Message); };
        var view = ml.Data.LoadFromEnumerable(rows);
        var options = new AlignmentOptions
        {
            Projector = ProjectorOptions.PooledMlp(64),
            Training = new AlignmentTrainingOptions { Epochs = 20, BatchSize = 28, WarmupSteps = 2, ValidationFraction = 0, TorchThreads = 1 },
        };
        var estimator = ml.Alignment.AlignEmbeddings("ImageAligned", "TextAligned", "ImageEmbedding", "TextEmbedding", options);
        using var transformer = estimator.Fit(view);
        // The caller's MLContext receives the trainer's lines through its Log event.
        lock (logged) Assert.Contains(logged, m => m.Contains("epoch 1/20: loss", StringComparison.Ordinal));
        var transformed = transformer.Transform(view);
        var aligned = transformed.GetColumn<float[]>("ImageAligned").ToList();
        var expected = transformer.Model.ProjectImages(d.ImagePooled);
        // Row-at-a-time vs batched matmul: equal up to float rounding.
        for (int i = 0; i < rows.Count; i++) Assert.True(MaxAbsDiff(expected.Row(i).ToArray(), aligned[i]) <= 1e-5f, $"row {i}");
        var texts = transformed.GetColumn<float[]>("TextAligned").ToList();
        // Trained pairs match: each image's nearest caption is mostly its own.
        int hits = 0;
        for (int i = 0; i < rows.Count; i++)
        {
            int best = Enumerable.Range(0, rows.Count).MaxBy(j => aligned[i].Zip(texts[j], (a, b) => a * b).Sum());
            if (best == i) hits++;
        }
        Assert.True(hits > rows.Count / 2, $"{hits}/{rows.Count}");

        // Image-only data: only the image column is added.
        var imagesOnly = ml.Data.LoadFromEnumerable(rows.Select(r => new ImageOnlyRow { ImageEmbedding = r.ImageEmbedding }));
        var schema = transformer.GetOutputSchema(imagesOnly.Schema);
        Assert.NotNull(schema.GetColumnOrNull("ImageAligned"));
        Assert.Null(schema.GetColumnOrNull("TextAligned"));

        var e = Assert.Throws<NotSupportedException>(() => ml.Model.Save(transformer, view.Schema, new MemoryStream()));
        Assert.Contains("AlignedModel", e.Message);
    }
}

[Collection("torch-projection")]
public class TrainCommandTests
{
    [Fact]
    public void TrainWritesBundleHistoryAndPlot()
    {
        var outDir = Path.Combine(Path.GetTempPath(), $"proj-train-{Guid.NewGuid():N}");
        try
        {
            var options = new AlignmentOptions
            {
                Projector = ProjectorOptions.PooledMlp(32),
                Training = new AlignmentTrainingOptions { Epochs = 3, BatchSize = 16, WarmupSteps = 1, ValidationFraction = 0.25, TorchThreads = 1 },
            };
            var history = MLNet.Align.Cli.Commands.TrainCommand.Train(FixtureFeatures.AlignmentData, outDir, options, resume: false, CancellationToken.None);
            Assert.Equal(3, history.Epochs.Count);
            using var model = AlignedModel.Load(Path.Combine(outDir, "model"));
            Assert.Equal(32, model.EmbeddingDimension);
            Assert.Equal(history.Steps.Count, TrainingHistory.FromJson(File.ReadAllText(Path.Combine(outDir, "training.json"))).Steps.Count);
            var png = File.ReadAllBytes(Path.Combine(outDir, "training.png"));
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png.Take(4));
            // Resume on a completed run returns the same history without training again.
            var again = MLNet.Align.Cli.Commands.TrainCommand.Train(FixtureFeatures.AlignmentData, outDir, options, resume: true, CancellationToken.None);
            Assert.Equal(history.Steps.Select(s => s.Loss), again.Steps.Select(s => s.Loss));
        }
        finally { if (Directory.Exists(outDir)) Directory.Delete(outDir, true); }
    }
}
