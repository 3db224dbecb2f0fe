// Loads a zero-shot classifier zip written by MLNet.Align (`mlnet-align zeroshot build` or
// ZeroShotClassifierIO.BuildAndSave) with nothing but ML.NET, and classifies images.
// Usage: dotnet run --project examples/LoadZeroShotZip -- classifier.zip image.png [more images]
using Microsoft.ML;
using Microsoft.ML.Data;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: LoadZeroShotZip <classifier.zip> <image> [image...]");
    return 2;
}

var ml = new MLContext(seed: 0);
ITransformer model = ml.Model.Load(args[0], out _);
using var engine = ml.Model.CreatePredictionEngine<ImageInput, ZeroShotOutput>(model);

// Class names travel in the zip as slot names of the Score column.
VBuffer<ReadOnlyMemory<char>> slotNames = default;
engine.OutputSchema["Score"].GetSlotNames(ref slotNames);
var classes = slotNames.DenseValues().Select(s => s.ToString()).ToArray();

foreach (var path in args.Skip(1))
{
    var p = engine.Predict(new ImageInput { ImagePath = Path.GetFullPath(path) });
    var top = Enumerable.Range(0, p.Score.Length).OrderByDescending(i => p.Score[i]).Take(5);
    Console.WriteLine($"{path}: {p.PredictedClass[0]}");
    foreach (var i in top) Console.WriteLine($"  {classes[i],-24} {p.Score[i]:F4}");
}
foreach (var t in (IEnumerable<ITransformer>)model) (t as IDisposable)?.Dispose();
return 0;

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
