using MLNet.Align.Embeddings;
using MLNet.Align.Projection;
using Xunit.Abstractions;

namespace MLNet.Align.Tests.Projection;

/// <summary>The training levers inside <see cref="AlignmentTrainer"/> on the 56 fixture pairs (real ResNet-18 / MiniLM
/// features): sigmoid loss (learned bias, checkpoint resume), multi-positive batches, latent mixup, option checks.</summary>
[Collection("torch-projection")]
public class LeverTrainingTests(ITestOutputHelper output)
{
    private static InMemoryAlignmentData Data(IReadOnlyList<long>? groups = null)
        => new(FixtureFeatures.Images.Pooled, FixtureFeatures.Texts.Pooled, groupIds: groups);

    private static AlignmentOptions FullBatch(int epochs, int seed, Func<AlignmentTrainingOptions, AlignmentTrainingOptions>? change = null)
    {
        var t = new AlignmentTrainingOptions { Epochs = epochs, BatchSize = 56, WarmupSteps = 0, ValidationFraction = 0, TorchThreads = 1, Seed = seed };
        return new() { Projector = ProjectorOptions.PooledMlp(64) with { Dropout = 0 }, Training = change?.Invoke(t) ?? t };
    }

    private static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b) { double s = 0; for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i]; return s; }
    private static double LogSigmoid(double x) => x >= 0 ? -Math.Log(1 + Math.Exp(-x)) : x - Math.Log(1 + Math.Exp(x));
    private static double LogSumExp(IEnumerable<double> xs) { var a = xs.ToArray(); double m = a.Max(); return m + Math.Log(a.Sum(x => Math.Exp(x - m))); }

    /// <summary>The 56 fixture pairs with row 1's image replaced by row 0's (a second caption of image 0) and, when
    /// <paramref name="chain"/>, row 2's caption by row 1's (a second image of that caption): groups {0, 1} or
    /// {0, 1, 2} (joined transitively), and rows 4, 5 sharing an image; the rest alone.</summary>
    private static (InMemoryAlignmentData Data, long[] Groups, EmbeddingMatrix Image, EmbeddingMatrix Text) Duplicated(bool chain = true)
    {
        var img = FixtureFeatures.Images.Pooled; var txt = FixtureFeatures.Texts.Pooled;
        var image = new EmbeddingMatrix((float[])img.Data.Clone(), img.Rows, img.Columns);
        var text = new EmbeddingMatrix((float[])txt.Data.Clone(), txt.Rows, txt.Columns);
        image.Row(0).CopyTo(image.Row(1));
        image.Row(4).CopyTo(image.Row(5));
        if (chain) text.Row(1).CopyTo(text.Row(2));
        var images = Enumerable.Range(0, 56).Select(i => i == 1 ? "img0" : i == 5 ? "img4" : $"img{i}").ToArray();
        var captions = Enumerable.Range(0, 56).Select(i => chain && i == 2 ? "cap1" : $"cap{i}").ToArray();
        var groups = PairGroups.FromImagesAndCaptions(images, captions);
        Assert.Equal(chain ? 53 : 54, groups.Distinct().Count());
        return (new InMemoryAlignmentData(image, text, groupIds: groups), groups, image, text);
    }

    [Fact]
    public void SigmoidLossStartsAtItsClosedFormLearnsTheBiasAndSetsTheTemperatureToOneOverTheScale()
    {
        const int seed = 3;
        using var fresh = new AlignedModel(ProjectorOptions.PooledMlp(64) with { Dropout = 0 }, 512, 384, initialTemperature: 1 / 20.0, seed: seed);
        var zi = fresh.ProjectImages(FixtureFeatures.Images.Pooled);
        var zt = fresh.ProjectTexts(FixtureFeatures.Texts.Pooled);
        double t = Math.Exp((float)Math.Log(20)), expected = 0;
        for (int i = 0; i < 56; i++)
            for (int j = 0; j < 56; j++)
                expected -= LogSigmoid((i == j ? 1 : -1) * (t * Dot(zi.Row(i), zt.Row(j)) - 10));
        expected /= 56;

        var r = new AlignmentTrainer(FullBatch(30, seed, o => o with { Loss = ContrastiveLoss.Sigmoid, LearningRate = 1e-2 })).Fit(Data());
        using var model = r.Model;
        output.WriteLine($"step-0 sigmoid loss {r.History.Steps[0].Loss:F5} (closed form {expected:F5}); after 30 steps {r.History.Steps[^1].Loss:F5}, " +
            $"bias {r.History.SigmoidBias:F4}, scale {r.History.SigmoidLogitScale:F4}, tau {model.Temperature:F5}");
        Assert.Equal(expected, r.History.Steps[0].Loss, 1e-4 * expected);
        Assert.True(r.History.Steps[^1].Loss < r.History.Steps[0].Loss);
        Assert.NotNull(r.History.SigmoidBias);
        // One AdamW step moves a parameter by about the learning rate (1e-2); 30 of them must leave a trace.
        Assert.True(Math.Abs(r.History.SigmoidBias!.Value + 10) > 5e-3, $"bias {r.History.SigmoidBias} did not move from -10");
        Assert.NotEqual(20, r.History.SigmoidLogitScale!.Value, 1e-3);
        Assert.Equal(1 / r.History.SigmoidLogitScale!.Value, model.Temperature, 1e-5);
        // tau follows 1/t within [MinTemperature, MaxTemperature] and moves as the scale is learned.
        Assert.All(r.History.Steps, s => Assert.InRange(s.Temperature, 0.001, 0.5));
        Assert.True(r.History.Steps.Select(s => s.Temperature).Distinct().Count() > 10);
    }

    [Fact]
    public void SigmoidRunResumesFromACheckpointBitExactlyWithTheLearnedBias()
    {
        var root = Path.Combine(Path.GetTempPath(), $"sigmoid-resume-{Guid.NewGuid():N}");
        try
        {
            AlignmentOptions Options(string dir) => new()
            {
                Projector = ProjectorOptions.PooledMlp(64) with { Dropout = 0.2f },
                Training = new AlignmentTrainingOptions
                {
                    Epochs = 3, BatchSize = 12, WarmupSteps = 2, ValidationFraction = 0.25, CheckpointDirectory = dir, CheckpointEverySteps = 2,
                    TorchThreads = 1, Seed = 17, Loss = ContrastiveLoss.Sigmoid, LearningRate = 5e-3, MultiPositive = true, MixupAlpha = 1.0,
                    MixupProbability = 0.5, StructureWeight = 0.5, StructureDivergence = StructureDivergence.JensenShannon, StructureWarmupSteps = 5,
                },
            };
            var (data, _, _, _) = Duplicated();
            var full = new AlignmentTrainer(Options(Path.Combine(root, "full"))).Fit(data);
            byte[] expected = full.Model.GetWeights();
            output.WriteLine($"full: {full.History.Steps.Count} steps, bias {full.History.SigmoidBias:R}, scale {full.History.SigmoidLogitScale:R}");

            var dir = Path.Combine(root, "cut");
            using (var cts = new CancellationTokenSource())
            {
                var progress = new ProjectorTests.SyncProgress<TrainingProgress>(p => { if (p.Step == 5 && p.Validation is null) cts.Cancel(); });
                Assert.ThrowsAny<OperationCanceledException>(() => new AlignmentTrainer(Options(dir)) { Progress = progress }.Fit(data, null, cts.Token));
            }
            var resumed = new AlignmentTrainer(Options(dir)).Resume(data);
            Assert.Equal(full.History.Steps.Select(s => s.Loss), resumed.History.Steps.Select(s => s.Loss));
            Assert.Equal(full.History.Steps.Select(s => s.Temperature), resumed.History.Steps.Select(s => s.Temperature));
            Assert.Equal(expected, resumed.Model.GetWeights());
            Assert.Equal(full.History.SigmoidBias, resumed.History.SigmoidBias);
            Assert.Equal(full.History.SigmoidLogitScale, resumed.History.SigmoidLogitScale);
            resumed.Model.Dispose(); full.Model.Dispose();
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }

    [Fact]
    public void MultiPositiveStepLossIsTheSupConFormOnADuplicatedImageAndPlainInfoNceWithoutDuplicates()
    {
        const int seed = 11;
        var (data, groups, image, text) = Duplicated();
        using var fresh = new AlignedModel(ProjectorOptions.PooledMlp(64) with { Dropout = 0 }, 512, 384, seed: seed);
        var zi = fresh.ProjectImages(image); var zt = fresh.ProjectTexts(text);
        double tau = fresh.Temperature;
        double Loss(Func<int, int, bool> positive)
        {
            double i2t = 0, t2i = 0;
            for (int r = 0; r < 56; r++)
            {
                var row = Enumerable.Range(0, 56).Select(c => Dot(zi.Row(r), zt.Row(c)) / tau).ToArray();
                var col = Enumerable.Range(0, 56).Select(c => Dot(zi.Row(c), zt.Row(r)) / tau).ToArray();
                var pos = Enumerable.Range(0, 56).Where(c => positive(r, c)).ToArray();
                double lr = LogSumExp(row), lc = LogSumExp(col);
                i2t += pos.Average(c => lr - row[c]);
                t2i += pos.Average(c => lc - col[c]);
            }
            return (i2t + t2i) / (2 * 56);
        }
        double expected = Loss((r, c) => groups[r] == groups[c]), expectedSingle = Loss((r, c) => r == c);

        var multi = new AlignmentTrainer(FullBatch(1, seed, o => o with { MultiPositive = true })).Fit(data);
        var single = new AlignmentTrainer(FullBatch(1, seed)).Fit(data);
        output.WriteLine($"step-0 loss: multi-positive {multi.History.Steps[0].Loss:F8} (closed form {expected:F8}), single {single.History.Steps[0].Loss:F8} (closed form {expectedSingle:F8})");
        Assert.Equal(expected, multi.History.Steps[0].Loss, 1e-6 * expected);
        Assert.Equal(expectedSingle, single.History.Steps[0].Loss, 1e-6 * expectedSingle);
        Assert.True(Math.Abs(expected - expectedSingle) > 1e-4, $"{expected} vs {expectedSingle}");
        multi.Model.Dispose(); single.Model.Dispose();

        // Exact duplicates on one side only (one image, two captions; no chain): uniform targets give the same InfoNCE
        // as single positives (the two duplicated rows have equal logits, so their terms only swap). Multi-positive
        // InfoNCE changes the loss only through groups joined transitively; the sigmoid loss changes either way.
        var (pairsOnly, _, _, _) = Duplicated(chain: false);
        var m2 = new AlignmentTrainer(FullBatch(1, seed, o => o with { MultiPositive = true })).Fit(pairsOnly);
        var s2 = new AlignmentTrainer(FullBatch(1, seed)).Fit(pairsOnly);
        Assert.Equal(s2.History.Steps[0].Loss, m2.History.Steps[0].Loss, 1e-6 * s2.History.Steps[0].Loss);
        var m3 = new AlignmentTrainer(FullBatch(1, seed, o => o with { MultiPositive = true, Loss = ContrastiveLoss.Sigmoid })).Fit(pairsOnly);
        var s3 = new AlignmentTrainer(FullBatch(1, seed, o => o with { Loss = ContrastiveLoss.Sigmoid })).Fit(pairsOnly);
        // (At b = -10 an extra positive pair costs about log(1 + e^(10 - 20 s)) / n instead of ~0 as a negative.)
        Assert.True(m3.History.Steps[0].Loss > s3.History.Steps[0].Loss + 1e-2, $"sigmoid: multi {m3.History.Steps[0].Loss} vs single {s3.History.Steps[0].Loss}");
        foreach (var r in new[] { m2, s2, m3, s3 }) r.Model.Dispose();

        // Every group unique: bit for bit the plain run, minibatches and dropout included.
        AlignmentOptions Mini(bool multiPositive) => new()
        {
            Projector = ProjectorOptions.PooledMlp(64),
            Training = new AlignmentTrainingOptions { Epochs = 2, BatchSize = 16, WarmupSteps = 2, ValidationFraction = 0.25, TorchThreads = 1, Seed = 5, MultiPositive = multiPositive },
        };
        var unique = Enumerable.Range(0, 56).Select(i => 1000L + i).ToArray();
        var a = new AlignmentTrainer(Mini(true)).Fit(Data(unique));
        var b = new AlignmentTrainer(Mini(false)).Fit(Data());
        Assert.Equal(b.History.Steps.Select(s => s.Loss), a.History.Steps.Select(s => s.Loss));
        Assert.Equal(b.Model.GetWeights(), a.Model.GetWeights());
        a.Model.Dispose(); b.Model.Dispose();
    }

    [Fact]
    public void InactiveLeversLeaveTheDefaultTrainingBitIdentical()
    {
        // The default trajectory (InfoNCE, KL structure term, no mixup) with every new option present but inert.
        AlignmentOptions Options(Func<AlignmentTrainingOptions, AlignmentTrainingOptions> change) => new()
        {
            Projector = ProjectorOptions.PooledMlp(64),
            Training = change(new AlignmentTrainingOptions { Epochs = 2, BatchSize = 16, WarmupSteps = 2, ValidationFraction = 0.25, TorchThreads = 1, Seed = 9, StructureWeight = 1.0 }),
        };
        var groups = Enumerable.Range(0, 56).Select(i => (long)(i / 2)).ToArray();
        var reference = new AlignmentTrainer(Options(o => o)).Fit(Data());
        var inert = new AlignmentTrainer(Options(o => o with
        {
            StructureDivergence = StructureDivergence.Kl, StructureWarmupSteps = 0, Loss = ContrastiveLoss.InfoNce, MultiPositive = false,
            MixupAlpha = 0, MixupProbability = 0.3, SigmoidInitialBias = -3, SigmoidInitialLogitScale = 7,
        })).Fit(Data(groups));
        var noMix = new AlignmentTrainer(Options(o => o with { MixupAlpha = 1.0, MixupProbability = 0 })).Fit(Data());
        Assert.Equal(reference.History.Steps.Select(s => s.Loss), inert.History.Steps.Select(s => s.Loss));
        Assert.Equal(reference.Model.GetWeights(), inert.Model.GetWeights());
        Assert.Equal(reference.Model.GetWeights(), noMix.Model.GetWeights());
        Assert.Null(reference.History.SigmoidBias);

        // Each lever on changes the trajectory, and mixup is deterministic.
        var mixA = new AlignmentTrainer(Options(o => o with { MixupAlpha = 1.0 })).Fit(Data());
        var mixB = new AlignmentTrainer(Options(o => o with { MixupAlpha = 1.0 })).Fit(Data());
        var js = new AlignmentTrainer(Options(o => o with { StructureDivergence = StructureDivergence.JensenShannon, StructureWarmupSteps = 3 })).Fit(Data());
        Assert.Equal(mixA.Model.GetWeights(), mixB.Model.GetWeights());
        Assert.NotEqual(reference.Model.GetWeights(), mixA.Model.GetWeights());
        Assert.NotEqual(reference.Model.GetWeights(), js.Model.GetWeights());
        Assert.All(js.History.Steps.Concat(mixA.History.Steps), s => Assert.True(double.IsFinite(s.Loss)));
        foreach (var r in new[] { reference, inert, noMix, mixA, mixB, js }) r.Model.Dispose();
    }

    [Fact]
    public void MultiPositiveWithoutGroupsAndMixupWithTokensFailWithClearErrors()
    {
        var e = Assert.Throws<ArgumentException>(() => new AlignmentTrainer(FullBatch(1, 1, o => o with { MultiPositive = true })).Fit(Data()));
        Assert.Contains("MultiPositive", e.Message);
        Assert.Contains("GroupIds is null", e.Message);
        Assert.Contains("groupIds holds 3 ids", Assert.Throws<ArgumentException>(() => Data([1, 2, 3])).Message);

        var tokens = FixtureFeatures.AlignmentData;
        var paper = new AlignmentOptions { Projector = ProjectorOptions.Paper(64), Training = FullBatch(1, 1, o => o with { MixupAlpha = 0.5 }).Training };
        var m = Assert.Throws<ArgumentException>(() => new AlignmentTrainer(paper).Fit(tokens));
        Assert.Contains("MixupAlpha = 0.5", m.Message);
        Assert.Contains("token features", m.Message);
    }

    [Fact]
    public void InvalidLeverOptionsThrowNamingTheOptionAndTheValue()
    {
        var cases = new (AlignmentTrainingOptions Options, string Expected)[]
        {
            (new() { MixupAlpha = -0.5 }, "MixupAlpha must be >= 0 and finite (0 = off), got -0.5"),
            (new() { MixupAlpha = double.NaN }, "MixupAlpha must be >= 0 and finite (0 = off), got NaN"),
            (new() { MixupAlpha = double.PositiveInfinity }, "MixupAlpha"),
            (new() { MixupProbability = 1.5 }, "MixupProbability must be in [0, 1], got 1.5"),
            (new() { MixupProbability = -0.1 }, "MixupProbability must be in [0, 1], got -0.1"),
            (new() { StructureWarmupSteps = -3 }, "StructureWarmupSteps must be >= 0, got -3"),
            (new() { StructureDivergence = (StructureDivergence)7 }, "StructureDivergence must be Kl or JensenShannon, got 7"),
            (new() { Loss = (ContrastiveLoss)5 }, "Loss must be InfoNce or Sigmoid, got 5"),
            (new() { SigmoidInitialLogitScale = 0 }, "SigmoidInitialLogitScale must be positive and finite, got 0"),
            (new() { SigmoidInitialLogitScale = double.NaN }, "SigmoidInitialLogitScale must be positive and finite, got NaN"),
            (new() { SigmoidInitialBias = double.NegativeInfinity }, "SigmoidInitialBias must be finite, got -"),
            (new() { Loss = ContrastiveLoss.Sigmoid, SigmoidInitialLogitScale = 1 }, "SigmoidInitialLogitScale 1 gives temperature 1/t = 1, outside [MinTemperature, MaxTemperature] = [0.001, 0.5]"),
        };
        foreach (var (options, expected) in cases)
            Assert.Contains(expected, Assert.Throws<ArgumentException>(() => new AlignmentTrainer(new AlignmentOptions { Training = options })).Message);
        // Boundaries and the unused sigmoid settings under InfoNCE are allowed.
        _ = new AlignmentTrainer(new AlignmentOptions { Training = new() { MixupAlpha = 0, MixupProbability = 0, StructureWarmupSteps = 0, SigmoidInitialLogitScale = 1 } });
        _ = new AlignmentTrainer(new AlignmentOptions { Training = new() { Loss = ContrastiveLoss.Sigmoid, SigmoidInitialLogitScale = 2, MixupProbability = 1 } });
    }

    [Fact]
    public void LeverOptionsRoundTripThroughJson()
    {
        var o = new AlignmentOptions
        {
            Training = new()
            {
                Loss = ContrastiveLoss.Sigmoid, SigmoidInitialBias = -5, SigmoidInitialLogitScale = 10, MultiPositive = true, MixupAlpha = 0.4,
                MixupProbability = 0.6, StructureDivergence = StructureDivergence.JensenShannon, StructureWarmupSteps = 50,
            },
        };
        var json = o.ToJson();
        Assert.Contains("\"Sigmoid\"", json);
        Assert.Contains("\"JensenShannon\"", json);
        Assert.Equal(o.Training, AlignmentOptions.FromJson(json).Training);
    }
}
