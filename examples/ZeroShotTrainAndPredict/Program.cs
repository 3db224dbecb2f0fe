// End-to-end zero-shot example: pairs -> frozen encoders -> trained projectors -> class prompts -> ML.NET zip ->
// PredictionEngine. Usage: dotnet run --project examples/ZeroShotTrainAndPredict -- <projector-bundle-dir> <classes.txt> <image>...
//
// Status: steps 1-2 (encode pairs, train projectors) need the embedding pipeline and AlignmentTrainer/AlignedModel,
// which are not merged yet; this program starts from a trained projector bundle and does steps 3-4 with the
// library as it exists. TODO(lead): once AlignedModel lands, load it below (AlignedModel.Load(dir)) and add steps 1-2
// (EmbeddingPipeline over tests/fixtures/pairs/pairs.tsv, AlignmentTrainer.Fit).
using Microsoft.ML;
using MLNet.Align.Encoders;
using MLNet.Align.Projection;
using MLNet.Align.ZeroShot;

if (args.Length < 3)
{
    Console.Error.WriteLine("usage: ZeroShotTrainAndPredict <projector-bundle-dir> <classes.txt> <image> [image...]");
    return 2;
}

(IOnnxExportableProjector projector, ITextEncoder text) = LoadBundle(args[0]);
var classes = ClassList.Load(args[1]);

// 3. Class embeddings: every class name in every template -> text encoder -> text projector -> mean per class.
var classEmbeddings = ClassEmbeddingBuilder.Build(classes, PromptTemplates.IconsAndClipArt, text, projector);
text.Dispose();

// 4. The classifier: stock ML.NET transformers only (ResNet18 + projector ONNX + head ONNX), saved as a zip.
var ml = new MLContext(seed: 0);
var zip = Path.Combine(Path.GetTempPath(), "zero-shot-classifier.zip");
ZeroShotClassifierIO.BuildAndSave(ml, projector, classEmbeddings, zip);
var model = ml.Model.Load(zip, out _);
using var engine = ml.Model.CreatePredictionEngine<ZeroShotImageInput, ZeroShotPrediction>(model);
foreach (var image in args.Skip(2))
{
    var p = engine.Predict(new ZeroShotImageInput { ImagePath = Path.GetFullPath(image) });
    Console.WriteLine($"{image}: {p.Label} ({p.Score.Max():P1})");
}
Console.WriteLine($"Saved {zip}; load it in any ML.NET app (see examples/LoadZeroShotZip).");
return 0;

static (IOnnxExportableProjector, ITextEncoder) LoadBundle(string dir)
    => throw new NotSupportedException($"Loading the projector bundle '{dir}' needs AlignedModel (proj helper), not merged yet.");
