using Microsoft.ML;
using MLNet.Align.Tests.ZeroShot;
using MLNet.Align.ZeroShot;
using Xunit.Abstractions;

namespace MLNet.Align.Tests.Reliability;

/// <summary>
/// Serving a loaded classifier zip to concurrent callers (README "Serving", examples/LoadZeroShotZip): one
/// PredictionEngine per caller (engines are not thread-safe), created with <c>OwnsTransformer = false</c>. ML.NET's
/// default (<c>OwnsTransformer = true</c>) makes an engine's Dispose dispose the shared model and its ONNX sessions,
/// which breaks every other engine on that model; the first test shows that hazard, the second that the safe pattern
/// survives engines being disposed and replaced while 8 callers classify real fixture images.
/// </summary>
public class ServingConcurrencyTests(ZeroShotFixture fx, ITestOutputHelper output) : IClassFixture<ZeroShotFixture>
{
    private static readonly string[] Images = Fixtures.Images.Select(Fixtures.Image).ToArray();

    private string BuildZip()
    {
        var path = Path.Combine(Path.GetTempPath(), $"serving-{Guid.NewGuid():N}.zip");
        ZeroShotClassifierIO.BuildAndSave(new MLContext(0), fx.Projector, fx.Classes, path);
        return path;
    }

    private static void DisposeModel(ITransformer model)
    {
        if (model is IEnumerable<ITransformer> chain) foreach (var t in chain) (t as IDisposable)?.Dispose();
    }

    [Fact]
    public void Disposing_a_default_engine_breaks_the_others_on_the_same_model()
    {
        var zip = BuildZip();
        var ml = new MLContext(0);
        var model = ml.Model.Load(zip, out _);
        try
        {
            var a = ml.Model.CreatePredictionEngine<ZeroShotImageInput, ZeroShotPrediction>(model);
            var b = ml.Model.CreatePredictionEngine<ZeroShotImageInput, ZeroShotPrediction>(model);
            b.Predict(new ZeroShotImageInput { ImagePath = Images[0] });
            a.Dispose(); // OwnsTransformer = true (ML.NET's default): disposes the shared ONNX sessions
            Assert.ThrowsAny<Exception>(() => b.Predict(new ZeroShotImageInput { ImagePath = Images[1] }));
        }
        finally { File.Delete(zip); }
    }

    [Fact]
    public void Eight_concurrent_callers_with_OwnsTransformer_false_match_serial_results_while_engines_are_disposed()
    {
        var zip = BuildZip();
        var ml = new MLContext(0);
        var model = ml.Model.Load(zip, out _);
        try
        {
            var options = new PredictionEngineOptions { OwnsTransformer = false };
            float[][] serial;
            using (var engine = ml.Model.CreatePredictionEngine<ZeroShotImageInput, ZeroShotPrediction>(model, options))
                serial = Images.Select(p => engine.Predict(new ZeroShotImageInput { ImagePath = p }).Score.ToArray()).ToArray();

            const int callers = 8, rounds = 3;
            var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
            int predictions = 0;
            using var start = new Barrier(callers);
            var threads = Enumerable.Range(0, callers).Select(c => new Thread(() =>
            {
                start.SignalAndWait();
                for (int round = 0; round < rounds; round++)
                {
                    // Each caller's engine lives for one round and is disposed while the others are mid-prediction.
                    using var engine = ml.Model.CreatePredictionEngine<ZeroShotImageInput, ZeroShotPrediction>(model, options);
                    for (int i = 0; i < Images.Length; i++)
                    {
                        int k = (i + c) % Images.Length;
                        var score = engine.Predict(new ZeroShotImageInput { ImagePath = Images[k] }).Score;
                        if (!score.SequenceEqual(serial[k])) failures.Add($"caller {c} round {round} image {k}");
                        Interlocked.Increment(ref predictions);
                    }
                }
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
            output.WriteLine($"{predictions} concurrent predictions by {callers} callers, {callers * rounds} engines created and disposed, {failures.Count} mismatches");
            Assert.Empty(failures);
            Assert.Equal(callers * rounds * Images.Length, predictions);
        }
        finally
        {
            DisposeModel(model);
            File.Delete(zip);
        }
    }
}
