using MLNet.Align.Embeddings;
using MLNet.Align.Projection;
using TorchSharp;
using Xunit.Abstractions;

namespace MLNet.Align.Tests.Reliability;

/// <summary>
/// The native crash of issue 10 ("Expected false to be true ... toFloat (Scalar.h:140)" in MlpHead.forward, "toLong"
/// in a division): TorchSharp 0.107 turns a .NET number into a native <c>Scalar</c> whose only owner is its finalizer;
/// the wrapper is unreachable while the native op still reads it, so a GC on another thread (the CLI's progress bar,
/// ONNX Runtime) can free it mid-op. This test makes that window wide: a second thread runs full blocking GCs and
/// finalizers back to back while the trainer trains and validates, and a hook inside the trainer collects between
/// every step. Each run must finish and match the run without GC pressure bit for bit.
/// </summary>
[Collection("torch-projection")]
public class TrainerGcStressTests(ITestOutputHelper output)
{
    /// <summary>Runs of the stress loop (each: 6 epochs x 4 steps, validation every epoch, MLP heads on both sides).</summary>
    public const int Runs = 24;

    private static InMemoryAlignmentData Data(int rows, int seed)
    {
        var rng = new Random(seed);
        float[] Make(int d) { var a = new float[rows * d]; for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextDouble() * 2 - 1); return a; }
        return new InMemoryAlignmentData(new EmbeddingMatrix(Make(48), rows, 48), new EmbeddingMatrix(Make(32), rows, 32));
    }

    private static AlignmentOptions Options() => new()
    {
        Projector = new ProjectorOptions { EmbeddingDimension = 24, Dropout = 0.1f },
        Training = new AlignmentTrainingOptions
        {
            Epochs = 6, BatchSize = 32, WarmupSteps = 2, ValidationFraction = 0.2, TorchThreads = 1, Seed = 5,
            StructureWeight = 0.1, AnchorWeight = 0.01, MaxGradientNorm = 1.0,
        },
    };

    private static float[] Train(InMemoryAlignmentData data, Action? betweenSteps)
    {
        var trainer = new AlignmentTrainer(Options()) { StepHook = betweenSteps };
        var result = trainer.Fit(data);
        using var model = result.Model;
        return model.Network.parameters().SelectMany(p => p.data<float>().ToArray()).ToArray();
    }

    /// <summary>
    /// Two trainings at once in one process, while a third thread keeps seeding and drawing from torch's process-wide
    /// generator, each match the run made alone bit for bit: dropout masks come from the run's own generator. (Before,
    /// a step seeded the shared generator and then drew its masks from it, so a test running beside
    /// StoreFedTrainingResumesBitIdentically could move it in between; CI saw that resume differ.)
    /// </summary>
    [Fact]
    public async Task Parallel_trainings_and_other_torch_users_do_not_change_each_others_dropout_masks()
    {
        var data = Data(160, 11);
        var reference = Train(data, null);
        using var stop = new CancellationTokenSource();
        long draws = 0;
        var noise = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
                lock (TorchScalars.RandomGate) // a well-behaved neighbour: it never interleaves with a model's initialisation
                {
                    torch.random.manual_seed(Interlocked.Increment(ref draws));
                    using var t = torch.rand(256);
                }
        }) { IsBackground = true, Name = "torch-noise" };
        noise.Start();
        float[][] runs;
        try
        {
            runs = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => Task.Run(() => Train(data, () => Thread.Yield()))));
        }
        finally
        {
            stop.Cancel();
            noise.Join();
        }
        Assert.True(Interlocked.Read(ref draws) > 10, $"the neighbour drew {draws} times");
        foreach (var run in runs) Assert.Equal(reference, run);
    }

    /// <summary>The GC-safe AdamW reproduces TorchSharp's AdamW bit for bit (two groups, decay on one), so replacing it
    /// changed no trajectory.</summary>
    [Fact]
    public void ScalarSafeAdamW_matches_TorchSharp_AdamW_bit_for_bit()
    {
        float[] Run(bool ours)
        {
            TorchSharp.Modules.Linear a, b;
            lock (TorchScalars.RandomGate) // the process-wide generator is shared with the tests running beside this one
            {
                torch.random.manual_seed(3);
                a = torch.nn.Linear(6, 4);
                b = torch.nn.Linear(4, 3);
            }
            using var disposeA = a;
            using var disposeB = b;
            var decay = new List<TorchSharp.Modules.Parameter> { a.weight!, b.weight! };
            var noDecay = new List<TorchSharp.Modules.Parameter> { a.bias!, b.bias! };
            using var xs = new torch.Generator(5);
            using var x = torch.randn(8, 6, generator: xs);
            ScalarSafeAdamW? mine = ours ? new ScalarSafeAdamW(new (IReadOnlyList<TorchSharp.Modules.Parameter>, double)[] { (decay, 0.05), (noDecay, 0) }, 0.01) : null;
            var theirs = ours ? null : new TorchSharp.Modules.AdamW(new List<TorchSharp.Modules.AdamW.ParamGroup>
            {
                new(decay, new TorchSharp.Modules.AdamW.Options { LearningRate = 0.01, weight_decay = 0.05 }),
                new(noDecay, new TorchSharp.Modules.AdamW.Options { LearningRate = 0.01, weight_decay = 0 }),
            }, 0.01, 0.9, 0.999, 1e-8, 0.05, false, false);
            for (int step = 0; step < 25; step++)
            {
                using var scope = torch.NewDisposeScope();
                double lr = 0.01 * (1 - step / 30.0);
                if (ours) { mine!.ZeroGrad(); foreach (var g in mine.Groups) g.LearningRate = lr; }
                else { theirs!.zero_grad(); foreach (var g in theirs.ParamGroups) g.LearningRate = lr; }
                var loss = b.forward(torch.nn.functional.gelu(a.forward(x))).pow(2).mean();
                loss.backward();
                if (ours) mine!.Step(); else theirs!.step();
            }
            mine?.Dispose(); theirs?.Dispose();
            return new[] { a.weight!, a.bias!, b.weight!, b.bias! }.SelectMany(p => p.data<float>().ToArray()).ToArray();
        }
        var reference = Run(ours: false);
        Assert.Equal(reference, Run(ours: true));
    }

    [Fact]
    public void Training_and_validation_survive_a_GC_storm_and_stay_bit_identical()
    {
        var data = Data(160, 11);
        var reference = Train(data, null);
        using var stop = new CancellationTokenSource();
        long collections = 0;
        var storm = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true);
                GC.WaitForPendingFinalizers();
                Interlocked.Increment(ref collections);
            }
        }) { IsBackground = true, Name = "gc-storm" };
        storm.Start();
        int passed = 0;
        try
        {
            for (int run = 0; run < Runs; run++)
            {
                var weights = Train(data, () => { GC.Collect(); GC.WaitForPendingFinalizers(); });
                Assert.Equal(reference, weights);
                passed++;
            }
        }
        finally
        {
            stop.Cancel();
            storm.Join();
        }
        output.WriteLine($"{passed}/{Runs} runs passed under {collections} concurrent full GCs");
        Assert.Equal(Runs, passed);
    }
}
