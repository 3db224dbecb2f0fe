// Loads a zero-shot classifier zip written by MLNet.Align (`mlnet-align zeroshot build` or
// ZeroShotClassifierIO.BuildAndSave) with nothing but ML.NET, and classifies images.
// Usage: dotnet run --project examples/LoadZeroShotZip -- classifier.zip image.png [more images]
using System.Collections.Concurrent;
using Microsoft.ML;
using Microsoft.ML.Data;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: LoadZeroShotZip <classifier.zip> <image> [image...]");
    return 2;
}

var ml = new MLContext(seed: 0);
ITransformer model = ml.Model.Load(args[0], out _);

// Serving pattern (safe under concurrency): a PredictionEngine is not thread-safe, so each caller rents its own from a
// small pool. Create engines with OwnsTransformer = false: with ML.NET's default (true), disposing ANY engine disposes
// the shared model and its ONNX sessions, and every other engine on it then fails. The model is disposed once, last.
// (Microsoft.Extensions.ML's PredictionEnginePool or Microsoft.Extensions.ObjectPool do the same in an ASP.NET app.)
var engineOptions = new PredictionEngineOptions { OwnsTransformer = false };
var pool = new ConcurrentBag<PredictionEngine<ImageInput, ZeroShotOutput>>();
PredictionEngine<ImageInput, ZeroShotOutput> Rent()
    => pool.TryTake(out var e) ? e : ml.Model.CreatePredictionEngine<ImageInput, ZeroShotOutput>(model, engineOptions);

// Class names travel in the zip as slot names of the Score column.
string[] classes;
{
    var engine = Rent();
    VBuffer<ReadOnlyMemory<char>> slotNames = default;
    engine.OutputSchema["Score"].GetSlotNames(ref slotNames);
    classes = slotNames.DenseValues().Select(s => s.ToString()).ToArray();
    pool.Add(engine);
}

// ML.NET's LoadImages ignores EXIF orientation: rotate phone photos upright before predicting (`mlnet-align predict`
// does this for you), and check files first if they may be truncated (LoadImages decodes what is there).
var lines = new string[args.Length - 1];
Parallel.For(1, args.Length, k =>
{
    var engine = Rent();
    try
    {
        var p = engine.Predict(new ImageInput { ImagePath = Path.GetFullPath(args[k]) });
        var top = Enumerable.Range(0, p.Score.Length).OrderByDescending(i => p.Score[i]).Take(5);
        lines[k - 1] = $"{args[k]}: {p.PredictedClass[0]}\n" + string.Join("\n", top.Select(i => $"  {classes[i],-24} {p.Score[i]:F4}"));
    }
    catch (Exception e) when (e is FileNotFoundException or InvalidOperationException or ArgumentException)
    {
        lines[k - 1] = $"{args[k]}: error: {e.Message}";
    }
    finally { pool.Add(engine); }
});
foreach (var line in lines) Console.WriteLine(line);
foreach (var e in pool) e.Dispose();                       // engines first (they do not own the model) ...
foreach (var t in (IEnumerable<ITransformer>)model) (t as IDisposable)?.Dispose(); // ... then the model, once
return lines.Any(l => l.Contains(": error: ")) ? 1 : 0;

/// <summary>Input row: column "ImagePath".</summary>
public sealed class ImageInput
{
    public string ImagePath { get; set; } = "";
}

/// <summary>Output row: Score [C] (softmax probabilities) and PredictedClass (one class name). The zip also has a
/// key-typed PredictedLabel (key values = class names) for mlContext.MulticlassClassification.Evaluate.</summary>
public sealed class ZeroShotOutput
{
    public float[] Score { get; set; } = [];
    public string[] PredictedClass { get; set; } = [];
}
