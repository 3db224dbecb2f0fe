// End-to-end zero-shot example: pairs file -> frozen encoders (cached store) -> trained projectors -> class prompts ->
// ML.NET zip -> PredictionEngine.
//
// Usage: dotnet run --project examples/ZeroShotTrainAndPredict -c Release -- <pairs.tsv> <classes.txt> <image> [image...]
// e.g.   dotnet run --project examples/ZeroShotTrainAndPredict -c Release -- tests/fixtures/pairs/pairs.tsv \
//          examples/ZeroShotTrainAndPredict/classes.txt tests/fixtures/pairs/images/tux_animals_blackbird.png
// (pairs.tsv: a header with `image` and `caption` columns; image paths relative to the file. classes.txt: one class
// name per line. Work files go to $MLNET_ALIGN_EXAMPLE_WORK, default <temp>/mlnet-align-example.)
using Microsoft.ML;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Projection;
using MLNet.Align.ZeroShot;
using MLNet.Align.Prompts;

if (args.Length < 3)
{
    Console.Error.WriteLine("usage: ZeroShotTrainAndPredict <pairs.tsv> <classes.txt> <image> [image...]");
    return 2;
}
// Check every input before the minutes of encoding and training.
foreach (var path in args)
    if (!File.Exists(path)) { Console.Error.WriteLine($"error: file not found: {path}"); return 1; }
IReadOnlyList<string> classes;
try { classes = ClassList.Load(args[1]); }
catch (Exception e) when (e is InvalidDataException or IOException) { Console.Error.WriteLine($"error: {e.Message}"); return 1; }
if (classes.Count < 2) { Console.Error.WriteLine($"error: {args[1]}: need at least 2 class names, found {classes.Count}."); return 1; }
var work = Environment.GetEnvironmentVariable("MLNET_ALIGN_EXAMPLE_WORK") is { Length: > 0 } w ? w
    : Path.Combine(Path.GetTempPath(), "mlnet-align-example");

// 1. Frozen encoders (packaged: ResNet-18 and all-MiniLM-L6-v2) and the embedding store (re-runs reuse it).
using var image = PackagedEncoders.ResNet18();
using var text = PackagedEncoders.MiniLM();
var pairs = PairsFile.Read(args[0]);
var key = EmbeddingPipeline.ComputeKey(pairs, image.Identity, text.Identity);
var store = EmbeddingPipeline.Run(pairs, EmbeddingStore.CacheDirectory(Path.Combine(work, "cache"), key), image, text).Store;
Console.WriteLine($"Encoded {store.Rows} pairs.");

// 2. Train the projectors (pooled MLP heads, symmetric InfoNCE) streaming from the store; keep the best epoch by
//    validation Recall@1.
var options = new AlignmentOptions
{
    Projector = ProjectorOptions.PooledMlp(256),
    Training = new AlignmentTrainingOptions { Epochs = 30, BatchSize = 32, ValidationFraction = 0.2, Seed = 1 },
};
var trainer = new AlignmentTrainer(options) { Log = Console.WriteLine }; // the encoders are read from the store
using var projector = trainer.Fit(new EmbeddingStoreDataSource(store)).Model;
projector.Save(Path.Combine(work, "aligned-model"));

// 3. Class embeddings: every class name in every template -> text encoder -> text projector -> mean per class.
var classEmbeddings = ClassEmbeddingBuilder.Build(classes, PromptTemplates.IconsAndClipArt, text, projector);

// 4. The classifier: stock ML.NET transformers only (ResNet18 + projector ONNX + head ONNX), saved as a zip that any
//    ML.NET app can load (see examples/LoadZeroShotZip); no text encoder is needed at inference.
var ml = new MLContext(seed: 0);
var zip = Path.Combine(work, "zero-shot-classifier.zip");
ZeroShotClassifierIO.BuildAndSave(ml, projector, classEmbeddings, zip);
var model = ml.Model.Load(zip, out _);
using var engine = ml.Model.CreatePredictionEngine<ZeroShotImageInput, ZeroShotPrediction>(model);
foreach (var path in args.Skip(2))
{
    var p = engine.Predict(new ZeroShotImageInput { ImagePath = Path.GetFullPath(path) });
    Console.WriteLine($"{path}: {p.Label} ({p.Score.Max():P1})");
}
Console.WriteLine($"Saved {zip}.");
return 0;
