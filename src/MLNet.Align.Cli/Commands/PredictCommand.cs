using System.CommandLine;
using System.IO.Compression;
using System.Text.Json;
using Microsoft.ML;
using MLNet.Align.Encoders;
using MLNet.Align.ZeroShot;
using SkiaSharp;
using Spectre.Console;
using MLNet.Align.Terminal;

namespace MLNet.Align.Cli.Commands;

/// <summary>`mlnet-align predict --model classifier.zip IMAGE... [--json] [--top 5]`: runs a saved zero-shot
/// classifier zip through ML.NET's PredictionEngine and prints the label and top scores per image. Every image is
/// checked first with the strict decoder (<see cref="ImageFileDecoder"/>): a missing, folder, truncated or undecodable
/// image is reported on stderr (<c>error: image ...</c>) and skipped, the others are still classified, and the exit
/// code is 1. ML.NET's LoadImages inside the zip ignores EXIF orientation, so an image tagged with a rotation is
/// classified from an upright temporary copy (reported as "exif": the orientation applied).</summary>
public sealed class PredictCommand : ICliCommand
{
    public Command Build()
    {
        var model = new Option<string>("--model") { Description = "Classifier zip written by `zeroshot build` (mlContext.Model.Save).", Required = true };
        var json = new Option<bool>("--json") { Description = "Print one JSON document (machine-readable) instead of tables." };
        var top = new Option<int>("--top") { Description = "How many top classes to show per image.", DefaultValueFactory = _ => 5 };
        var gpu = new Option<int?>("--gpu-device-id") { Description = "Run the zip's ONNX stages on this CUDA device (MLContext.GpuDeviceId; needs a -p:Cuda=true build)." };
        var fallback = new Option<bool>("--fallback-to-cpu") { Description = "With --gpu-device-id: run on CPU (one warning line) when CUDA cannot start, instead of failing." };
        var maxPixels = new Option<long>("--max-image-pixels") { Description = "Pixel budget of one image (width x height as its header declares, checked before decoding); larger images are refused, naming them.", DefaultValueFactory = _ => ImageFileDecoder.DefaultMaxPixels };
        var images = new Argument<string[]>("images") { Description = "Image files.", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("predict", "Classify images with a saved zero-shot classifier zip.");
        cmd.Options.Add(model); cmd.Options.Add(json); cmd.Options.Add(top); cmd.Options.Add(gpu); cmd.Options.Add(fallback); cmd.Options.Add(maxPixels); cmd.Arguments.Add(images);
        cmd.SetAction(parse => CliErrors.Run(() =>
        {
            if (parse.GetValue(top) < 1) throw new ArgumentException($"--top must be at least 1, got {parse.GetValue(top)}.");
            if (parse.GetValue(maxPixels) < 1) throw new ArgumentException($"--max-image-pixels must be positive, got {parse.GetValue(maxPixels)}.");
            var outcome = Classify(parse.GetValue(model)!, parse.GetValue(images)!, parse.GetValue(top), parse.GetValue(gpu), parse.GetValue(fallback), parse.GetValue(maxPixels));
            if (parse.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(outcome.Results, new JsonSerializerOptions { WriteIndented = true }));
            else
                Print(outcome.Results, AnsiConsole.Console);
            foreach (var e in outcome.Errors) Console.Error.WriteLine($"error: image '{e.Image}': {e.Message}");
            if (outcome.Errors.Count > 0)
                Console.Error.WriteLine($"error: {outcome.Errors.Count} of {outcome.Errors.Count + outcome.Results.Count} images could not be classified.");
            return outcome.Errors.Count > 0 ? 1 : 0;
        }));
        return cmd;
    }

    /// <summary>The human-readable output: per image, its path in full on a line of its own (a table title would be cut
    /// to the table's width) with the top-1 label, then a table of the top classes and probabilities.</summary>
    /// <param name="results">The classified images.</param>
    /// <param name="console">Where to write (the process console, or a recording one in tests).</param>
    public static void Print(IReadOnlyList<ImageResult> results, IAnsiConsole console)
    {
        foreach (var r in results)
        {
            // Written raw, past Spectre's layout, which would cut or fold a path longer than the console into pieces.
            console.Profile.Out.Writer.WriteLine(r.Image);
            console.Profile.Out.Writer.WriteLine($"  -> {r.Label}" + (r.Exif is null ? "" : $" (EXIF {r.Exif} applied)"));
            var table = new Table().AddColumn("class").AddColumn(new TableColumn("probability").RightAligned());
            foreach (var s in r.Top) table.AddRow(Markup.Escape(s.Label), s.Score.ToString("F4", System.Globalization.CultureInfo.InvariantCulture));
            console.Write(table);
        }
    }

    /// <summary>One image's result (the JSON schema of --json: an array of these).</summary>
    /// <param name="Image">The path as given.</param>
    /// <param name="Label">Top-1 class.</param>
    /// <param name="Top">Top classes with probabilities, best first.</param>
    /// <param name="Exif">The EXIF orientation applied before classification, null when the image is stored upright.</param>
    public sealed record ImageResult(string Image, string Label, IReadOnlyList<ClassScore> Top, string? Exif = null);

    /// <summary>A class and its probability.</summary>
    public sealed record ClassScore(string Label, float Score);

    /// <summary>An image that could not be classified and why.</summary>
    public sealed record ImageError(string Image, string Message);

    /// <summary>Results for the good images and the reasons for the bad ones.</summary>
    public sealed record Outcome(IReadOnlyList<ImageResult> Results, IReadOnlyList<ImageError> Errors);

    /// <summary>Loads the zip and classifies the images; throws on the first bad image (see <see cref="Classify"/>).</summary>
    /// <exception cref="FileNotFoundException">The zip or an image does not exist (the message names it).</exception>
    /// <exception cref="InvalidDataException">The zip is not an ML.NET zero-shot classifier, or an image is unreadable.</exception>
    /// <param name="gpuDeviceId">CUDA device for the zip's ONNX stages (MLContext.GpuDeviceId); null = CPU.</param>
    /// <param name="fallbackToCpu">With a device: CPU after one stderr line when CUDA cannot start, else an error.</param>
    public static IReadOnlyList<ImageResult> Run(string modelPath, IReadOnlyList<string> imagePaths, int top, int? gpuDeviceId = null, bool fallbackToCpu = false)
    {
        if (!File.Exists(modelPath) && !Directory.Exists(modelPath)) throw new FileNotFoundException($"Classifier zip '{modelPath}' does not exist.", modelPath);
        foreach (var p in imagePaths)
            if (!File.Exists(p) && !Directory.Exists(p)) throw new FileNotFoundException($"Image '{p}' does not exist.", p);
        var outcome = Classify(modelPath, imagePaths, top, gpuDeviceId, fallbackToCpu);
        if (outcome.Errors.Count > 0) throw new InvalidDataException($"Image '{outcome.Errors[0].Image}': {outcome.Errors[0].Message}");
        return outcome.Results;
    }

    /// <summary>Loads the zip, then classifies every readable image and collects the unreadable ones.</summary>
    /// <exception cref="FileNotFoundException">The zip does not exist.</exception>
    /// <exception cref="InvalidDataException">The path is a folder, not a zip, a truncated zip, or a zip that is not a
    /// zero-shot classifier (no Score column with class names).</exception>
    /// <param name="maxPixels">Pixel budget of one image (header-declared width x height), checked before decoding.</param>
    public static Outcome Classify(string modelPath, IReadOnlyList<string> imagePaths, int top, int? gpuDeviceId = null, bool fallbackToCpu = false,
        long maxPixels = ImageFileDecoder.DefaultMaxPixels)
    {
        var ml = new MLContext(seed: 0);
        if (gpuDeviceId is not null)
        {
            // Decide (and report) once; ML.NET's OnnxTransformer then gets the same answer, so no stage half-starts on CUDA.
            var provider = MLNet.Align.Encoders.OnnxExecution.Resolve("zip chain", gpuDeviceId, fallbackToCpu, Console.Error.WriteLine);
            if (provider != MLNet.Align.Encoders.OnnxExecution.Cpu) { ml.GpuDeviceId = gpuDeviceId; ml.FallbackToCpu = fallbackToCpu; }
        }
        var transformer = LoadClassifier(ml, modelPath);
        var temp = Path.Combine(Path.GetTempPath(), $"mlnet-align-predict-{Guid.NewGuid():N}");
        try
        {
            PredictionEngine<ZeroShotImageInput, ZeroShotPrediction> engine;
            string[] names;
            try
            {
                engine = ml.Model.CreatePredictionEngine<ZeroShotImageInput, ZeroShotPrediction>(transformer);
                names = ZeroShotModel.ClassNames(engine.OutputSchema);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                throw new InvalidDataException($"'{modelPath}' is an ML.NET model zip but not a zero-shot classifier from `zeroshot build`: {e.Message}", e);
            }
            using (engine)
            {
                var results = new List<ImageResult>();
                var errors = new List<ImageError>();
                foreach (var p in imagePaths)
                {
                    try
                    {
                        // The strict decoder catches what LoadImages would pass or crash on: folders, truncated files.
                        string input = Path.GetFullPath(p);
                        string? exif = null;
                        // Regular files only (a FIFO would block LoadImages forever) and within the pixel budget.
                        using (var bitmap = ImageFileDecoder.Decode(input, maxPixels))
                        {
                            var origin = ImageFileDecoder.Orientation(input);
                            if (origin != SKEncodedOrigin.TopLeft)
                            {
                                Directory.CreateDirectory(temp);
                                input = Path.Combine(temp, $"{results.Count + errors.Count}.png");
                                using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
                                File.WriteAllBytes(input, data.ToArray());
                                exif = origin.ToString();
                            }
                        }
                        var pred = engine.Predict(new ZeroShotImageInput { ImagePath = input });
                        var best = ZeroShotModel.TopK(pred.Score, top).Select(i => new ClassScore(names[i], pred.Score[i])).ToList();
                        results.Add(new ImageResult(p, pred.Label, best, exif));
                    }
                    catch (Exception e) when (CliErrors.IsUserError(e) || e is Microsoft.ML.OnnxRuntime.OnnxRuntimeException)
                    {
                        errors.Add(new ImageError(p, e.Message));
                    }
                }
                return new Outcome(results, errors);
            }
        }
        finally
        {
            if (transformer is IEnumerable<ITransformer> chain) foreach (var t in chain) (t as IDisposable)?.Dispose();
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        }
    }

    /// <summary>Opens a classifier zip with clear errors for the usual wrong files.</summary>
    internal static ITransformer LoadClassifier(MLContext ml, string modelPath)
    {
        if (Directory.Exists(modelPath))
            throw new InvalidDataException($"--model '{modelPath}' is a folder; give the classifier zip written by `zeroshot build --out FILE.zip` (a folder is an aligned-model bundle).");
        if (!File.Exists(modelPath)) throw new FileNotFoundException($"Classifier zip '{modelPath}' does not exist.", modelPath);
        try
        {
            using (var zip = ZipFile.OpenRead(modelPath)) { _ = zip.Entries.Count; }
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"'{modelPath}' is not a readable zip (truncated or another kind of file): {e.Message}", e);
        }
        try { return ml.Model.Load(modelPath, out _); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidDataException($"'{modelPath}' is a zip but not a loadable ML.NET model (from `zeroshot build`): {e.Message}", e);
        }
    }
}
