using MLNet.Align.Embeddings;
using MLNet.Align.Projection;
using Xunit.Abstractions;
using static MLNet.Align.Tests.Projection.ClosedFormInitializerTests;

namespace MLNet.Align.Tests.Projection;

/// <summary>The trainer's structure-preserving term, L2-SP anchor, initial-model selection and initialiser hook, on
/// real ResNet-18 / MiniLM features of the 56 fixture pairs.</summary>
[Collection("torch-projection")]
public class TrainerRegularizerTests(ITestOutputHelper output)
{
    private static InMemoryAlignmentData Data => new InMemoryAlignmentData(FixtureFeatures.Images.Pooled, FixtureFeatures.Texts.Pooled);

    /// <summary>Every projector parameter except the temperature, flattened in module order.</summary>
    private static float[] Weights(AlignedModel model)
        => model.Network.named_parameters().Where(p => p.name != "temperature").SelectMany(p => p.parameter.data<float>().ToArray()).ToArray();

    private static double SquaredDistance(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)(a[i] - b[i]) * (a[i] - b[i]);
        return s;
    }

    private static AlignmentOptions FullBatch(ProjectorOptions projector, int epochs, int seed, double structure = 0, double anchor = 0) => new()
    {
        // One step per epoch over all 56 rows, no dropout, no warmup (step 0 runs at the peak rate whatever the
        // epoch count): the step losses are then reproducible outside the trainer.
        Projector = projector with { Dropout = 0 },
        Training = new AlignmentTrainingOptions
        {
            Epochs = epochs, BatchSize = 56, WarmupSteps = 0, ValidationFraction = 0, TorchThreads = 1, Seed = seed,
            StructureWeight = structure, AnchorWeight = anchor,
        },
    };

    private static double LogSumExp(IEnumerable<double> xs) { var a = xs.ToArray(); double m = a.Max(); return m + Math.Log(a.Sum(x => Math.Exp(x - m))); }

    private static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b) { double s = 0; for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i]; return s; }

    /// <summary>Symmetric InfoNCE of unit rows with temperature tau, in double.</summary>
    private static double InfoNce(EmbeddingMatrix zi, EmbeddingMatrix zt, double tau)
    {
        int n = zi.Rows;
        double i2t = 0, t2i = 0;
        for (int r = 0; r < n; r++)
        {
            var row = Enumerable.Range(0, n).Select(c => Dot(zi.Row(r), zt.Row(c)) / tau).ToArray();
            var col = Enumerable.Range(0, n).Select(c => Dot(zi.Row(c), zt.Row(r)) / tau).ToArray();
            i2t += LogSumExp(row) - row[r];
            t2i += LogSumExp(col) - col[r];
        }
        return (i2t + t2i) / (2 * n);
    }

    /// <summary>Mean over rows of KL(P_orig || P_proj), P = softmax over j != i of cos(x_i, x_j) / t, in double.</summary>
    private static double Structure(EmbeddingMatrix original, EmbeddingMatrix projected, double t)
    {
        int n = original.Rows;
        double Norm(int r) => Math.Sqrt(Dot(original.Row(r), original.Row(r)));
        double total = 0;
        for (int r = 0; r < n; r++)
        {
            var others = Enumerable.Range(0, n).Where(c => c != r).ToArray();
            var so = others.Select(c => Dot(original.Row(r), original.Row(c)) / (Norm(r) * Norm(c)) / t).ToArray();
            var sp = others.Select(c => Dot(projected.Row(r), projected.Row(c)) / t).ToArray();
            double lo = LogSumExp(so), lp = LogSumExp(sp);
            for (int k = 0; k < others.Length; k++) total += Math.Exp(so[k] - lo) * ((so[k] - lo) - (sp[k] - lp));
        }
        return total / n;
    }

    [Fact]
    public void StructureTermAddsTheKlOfInBatchNeighbourhoodsAndChangesTraining()
    {
        var projector = ProjectorOptions.PooledMlp(64);
        const int seed = 21;
        const double weight = 2.0;
        // Step 0 of a full-batch run sees the freshly initialised model: its loss is computable here.
        using var fresh = new AlignedModel(projector with { Dropout = 0 }, 512, 384, seed: seed);
        var zi = fresh.ProjectImages(FixtureFeatures.Images.Pooled);
        var zt = fresh.ProjectTexts(FixtureFeatures.Texts.Pooled);
        double infoNce = InfoNce(zi, zt, fresh.Temperature);
        double structure = (Structure(FixtureFeatures.Images.Pooled, zi, 0.05) + Structure(FixtureFeatures.Texts.Pooled, zt, 0.05)) / 2;

        var plain = new AlignmentTrainer(FullBatch(projector, 1, seed)).Fit(Data);
        var structured = new AlignmentTrainer(FullBatch(projector, 1, seed, structure: weight)).Fit(Data);
        double l0 = plain.History.Steps[0].Loss, ls = structured.History.Steps[0].Loss;
        output.WriteLine($"step-0 loss: InfoNCE {l0:F5} (expected {infoNce:F5}), with structure x{weight} {ls:F5} (expected {infoNce + weight * structure:F5}; KL {structure:F5})");
        Assert.Equal(infoNce, l0, 1e-4 * infoNce);
        Assert.True(structure > 1e-3, $"KL {structure}: a random projector should not keep the encoders' neighbourhoods");
        Assert.Equal(infoNce + weight * structure, ls, 1e-4 * ls);
        plain.Model.Dispose(); structured.Model.Dispose();

        // Minibatch training with dropout: finite throughout, and a different trajectory than without the term.
        AlignmentOptions Mini(double w) => new()
        {
            Projector = projector,
            Training = new AlignmentTrainingOptions { Epochs = 4, BatchSize = 16, WarmupSteps = 2, ValidationFraction = 0.25, TorchThreads = 1, Seed = 5, StructureWeight = w },
        };
        var a = new AlignmentTrainer(Mini(0)).Fit(Data);
        var b = new AlignmentTrainer(Mini(1.0)).Fit(Data);
        Assert.All(b.History.Steps, s => Assert.True(double.IsFinite(s.Loss), $"step {s.Step} loss {s.Loss}"));
        Assert.All(b.History.Epochs, e => Assert.True(double.IsFinite(e.Validation!.Loss)));
        Assert.Equal(a.History.Steps.Count, b.History.Steps.Count);
        Assert.True(b.History.Steps[0].Loss > a.History.Steps[0].Loss); // same weights and dropout mask at step 0; KL >= 0
        Assert.NotEqual(Weights(a.Model), Weights(b.Model));
        output.WriteLine($"4 epochs: last loss {a.History.Steps[^1].Loss:F4} (InfoNCE) vs {b.History.Steps[^1].Loss:F4} (InfoNCE + KL)");
        a.Model.Dispose(); b.Model.Dispose();
    }

    [Fact]
    public void AnchorAddsTheSquaredDistanceToTheInitialWeightsAndHoldsTheWeightsNearThem()
    {
        var projector = ProjectorOptions.PooledMlp(64);
        const int seed = 8;
        const double lambda = 3.0;
        // Step 0 has w = w0, so the anchor's gradient is zero and both runs take the same first step; the step-1 loss
        // then differs by exactly lambda * ||w1 - w0||^2 (temperature excluded).
        using var initial = new AlignedModel(projector with { Dropout = 0 }, 512, 384, seed: seed);
        var w0 = Weights(initial);
        var oneStep = new AlignmentTrainer(FullBatch(projector, 1, seed)).Fit(Data);
        double d1 = SquaredDistance(Weights(oneStep.Model), w0);
        var free = new AlignmentTrainer(FullBatch(projector, 2, seed)).Fit(Data);
        var anchored = new AlignmentTrainer(FullBatch(projector, 2, seed, anchor: lambda)).Fit(Data);
        Assert.Equal(free.History.Steps[0].Loss, anchored.History.Steps[0].Loss);
        double extra = anchored.History.Steps[1].Loss - free.History.Steps[1].Loss;
        output.WriteLine($"||w1 - w0||^2 = {d1:F6}; step-1 loss difference {extra:F6}, expected {lambda * d1:F6}");
        Assert.Equal(lambda * d1, extra, 2e-3 * lambda * d1 + 1e-5);
        oneStep.Model.Dispose(); free.Model.Dispose(); anchored.Model.Dispose();

        // A long run: a very large anchor keeps the weights much closer to where they started.
        double Drift(double anchor)
        {
            var options = new AlignmentOptions
            {
                Projector = projector,
                Training = new AlignmentTrainingOptions { Epochs = 8, BatchSize = 16, WarmupSteps = 2, ValidationFraction = 0, TorchThreads = 1, Seed = seed, AnchorWeight = anchor },
            };
            var r = new AlignmentTrainer(options).Fit(Data);
            using var m = r.Model;
            return Math.Sqrt(SquaredDistance(Weights(m), w0) / SquaredDistance(w0, new float[w0.Length]));
        }
        double freeDrift = Drift(0), anchoredDrift = Drift(1e4);
        output.WriteLine($"relative drift ||w - w0|| / ||w0|| after 24 steps: free {freeDrift:E3}, anchor 1e4 {anchoredDrift:E3}, ratio {anchoredDrift / freeDrift:F3}");
        Assert.True(anchoredDrift < 0.25 * freeDrift, $"anchored drift {anchoredDrift} vs free {freeDrift}");
    }

    [Fact]
    public void SelectInitialModelKeepsTheInitialisedWeightsWhenTheyScoreBest()
    {
        var projector = TokenGlobals(384);
        var init = ClosedFormInitializer.Create(ClosedFormKind.LeastSquares, FixtureFeatures.Images.Pooled, FixtureFeatures.Texts.Pooled);
        AlignmentOptions Options(bool selectInitial) => new()
        {
            Projector = projector,
            Training = new AlignmentTrainingOptions
            {
                Epochs = 3, BatchSize = 16, WarmupSteps = 1, ValidationFraction = 0, TorchThreads = 1, Seed = 4,
                Metric = SelectionMetric.Custom, SelectInitialModel = selectInitial,
            },
        };
        using var reference = new AlignedModel(projector, 512, 384, initialTemperature: 0.07, seed: 4);
        init(reference);
        byte[] initialWeights = reference.GetWeights();

        // The score falls with every call: the model before training (scored first) is the best.
        int calls = 0;
        var trainer = new AlignmentTrainer(Options(true)) { Initializer = init, SelectionCallback = _ => 100 - calls++ };
        var kept = trainer.Fit(Data);
        Assert.Equal(4, calls);
        Assert.Equal(-1, kept.History.BestEpoch);
        Assert.Equal(100, kept.History.BestScore);
        Assert.Equal(-1, kept.History.Epochs[0].Epoch);
        Assert.Equal(0, kept.History.Epochs[0].Steps);
        Assert.Equal(-1, kept.Model.Training!.BestEpoch);
        Assert.Equal(9, kept.History.Steps.Count); // it did train
        Assert.Equal(initialWeights, kept.Model.GetWeights());
        Assert.Equal(reference.ProjectImages(FixtureFeatures.Images.Pooled).Data, kept.Model.ProjectImages(FixtureFeatures.Images.Pooled).Data);
        kept.Model.Dispose();

        // Without SelectInitialModel the same falling score picks epoch 0, whose weights moved.
        calls = 0;
        var trained = new AlignmentTrainer(Options(false)) { Initializer = init, SelectionCallback = _ => 100 - calls++ }.Fit(Data);
        Assert.Equal(0, trained.History.BestEpoch);
        Assert.DoesNotContain(trained.History.Epochs, e => e.Epoch == -1);
        Assert.NotEqual(initialWeights, trained.Model.GetWeights());
        trained.Model.Dispose();

        // A rising score: the initial entry is logged but the last epoch wins.
        calls = 0;
        var rising = new AlignmentTrainer(Options(true)) { Initializer = init, SelectionCallback = _ => calls++ }.Fit(Data);
        Assert.Equal(2, rising.History.BestEpoch);
        Assert.Equal(-1, rising.History.Epochs[0].Epoch);
        rising.Model.Dispose();
    }

    [Fact]
    public void InvalidRegulariserOptionsThrowNamingTheOption()
    {
        AlignmentOptions With(AlignmentTrainingOptions t) => new() { Training = t };
        var cases = new (AlignmentTrainingOptions Options, string Name)[]
        {
            (new() { StructureWeight = -0.1 }, "StructureWeight"),
            (new() { AnchorWeight = -1 }, "AnchorWeight"),
            (new() { StructureWeight = double.NaN }, "StructureWeight"),
            (new() { AnchorWeight = double.NaN }, "AnchorWeight"),
            (new() { StructureTemperature = 0 }, "StructureTemperature"),
            (new() { StructureTemperature = -0.05 }, "StructureTemperature"),
            (new() { StructureTemperature = double.NaN }, "StructureTemperature"),
        };
        foreach (var (options, name) in cases)
            Assert.Contains(name, Assert.Throws<ArgumentException>(() => new AlignmentTrainer(With(options))).Message);
        // The boundaries are allowed.
        _ = new AlignmentTrainer(With(new AlignmentTrainingOptions { StructureWeight = 0, AnchorWeight = 0, StructureTemperature = 1e-3 }));
    }

    [Fact]
    public void ResumeWithStructureAnchorAndInitialiserReachesBitIdenticalWeights()
    {
        var root = Path.Combine(Path.GetTempPath(), $"regularised-resume-{Guid.NewGuid():N}");
        var init = ClosedFormInitializer.Create(ClosedFormKind.LeastSquares, FixtureFeatures.Images.Pooled, FixtureFeatures.Texts.Pooled);
        try
        {
            AlignmentOptions Options(string dir, bool onCancel = true) => new()
            {
                Projector = TokenGlobals(384) with { Dropout = 0.2f },
                Training = new AlignmentTrainingOptions
                {
                    Epochs = 4, BatchSize = 12, WarmupSteps = 2, ValidationFraction = 0.25, CheckpointDirectory = dir,
                    CheckpointEverySteps = 2, CheckpointOnCancel = onCancel, TorchThreads = 1, Seed = 13,
                    StructureWeight = 0.5, AnchorWeight = 5.0, SelectInitialModel = true, Metric = SelectionMetric.ValidationLoss,
                },
            };
            var full = new AlignmentTrainer(Options(Path.Combine(root, "full"))) { Initializer = init }.Fit(Data);
            byte[] expected = full.Model.GetWeights();
            output.WriteLine($"full run: {full.History.Steps.Count} steps, best epoch {full.History.BestEpoch}, losses {string.Join(", ", full.History.Steps.Select(s => s.Loss.ToString("F4")))}");

            // Cut mid-epoch 2 (restart from the periodic checkpoint at step 6) and inside epoch 0 (before any epoch end:
            // the checkpoint must carry the initial model's score and weights).
            foreach (var (cut, onCancel) in new[] { (7, false), (2, true) })
            {
                var dir = Path.Combine(root, $"cut-{cut}");
                using var cts = new CancellationTokenSource();
                var progress = new ProjectorTests.SyncProgress<TrainingProgress>(p => { if (p.Step == cut && p.Validation is null) cts.Cancel(); });
                Assert.ThrowsAny<OperationCanceledException>(() =>
                    new AlignmentTrainer(Options(dir, onCancel)) { Initializer = init, Progress = progress }.Fit(Data, null, cts.Token));
                var resumed = new AlignmentTrainer(Options(dir, onCancel)) { Initializer = init }.Resume(Data);
                Assert.Equal(full.History.Steps.Select(s => s.Loss), resumed.History.Steps.Select(s => s.Loss));
                Assert.Equal(expected, resumed.Model.GetWeights());
                Assert.Equal(full.History.BestEpoch, resumed.History.BestEpoch);
                Assert.Equal(full.History.Epochs.Select(e => e.Epoch), resumed.History.Epochs.Select(e => e.Epoch));
                resumed.Model.Dispose();
            }
            // Resuming without the initialiser would anchor to other weights: the checkpoint records the SHA-256 of the
            // initial weights and resume refuses the mismatch (issue 10; it used to drift silently).
            var dirNoInit = Path.Combine(root, "no-init");
            using (var cts = new CancellationTokenSource())
            {
                var progress = new ProjectorTests.SyncProgress<TrainingProgress>(p => { if (p.Step == 7 && p.Validation is null) cts.Cancel(); });
                Assert.ThrowsAny<OperationCanceledException>(() =>
                    new AlignmentTrainer(Options(dirNoInit)) { Initializer = init, Progress = progress }.Fit(Data, null, cts.Token));
            }
            var refused = Assert.Throws<InvalidDataException>(() => new AlignmentTrainer(Options(dirNoInit)).Resume(Data));
            Assert.Contains("other initial weights", refused.Message);
            // The same initialiser still resumes.
            new AlignmentTrainer(Options(dirNoInit)) { Initializer = init }.Resume(Data).Model.Dispose();
            full.Model.Dispose();
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }
}
