using System.CommandLine;
using System.Text.Json;
using Microsoft.ML;
using MLNet.Align.ZeroShot;
using Spectre.Console;

namespace MLNet.Align.Cli.Commands;

/// <summary>`mlnet-align predict --model classifier.zip IMAGE... [--json] [--top 5]`: runs a saved zero-shot
/// classifier zip through ML.NET's PredictionEngine and prints the label and top scores per image.</summary>
public sealed class PredictCommand : ICliCommand
{
    public Command Build()
    {
        var model = new Option<string>("--model") { Description = "Classifier zip written by `zeroshot build` (mlContext.Model.Save).", Required = true };
        var json = new Option<bool>("--json") { Description = "Print one JSON document (machine-readable) instead of tables." };
        var top = new Option<int>("--top") { Description = "How many top classes to show per image.", DefaultValueFactory = _ => 5 };
        var gpu = new Option<int?>("--gpu-device-id") { Description = "Run the zip's ONNX stages on this CUDA device (MLContext.GpuDeviceId; needs a -p:Cuda=true build)." };
        var fallback = new Option<bool>("--fallback-to-cpu") { Description = "With --gpu-device-id: run on CPU (one warning line) when CUDA cannot start, instead of failing." };
        var images = new Argument<string[]>("images") { Description = "Image files.", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("predict", "Classify images with a saved zero-shot classifier zip.");
        cmd.Options.Add(model); cmd.Options.Add(json); cmd.Options.Add(top); cmd.Options.Add(gpu); cmd.Options.Add(fallback); cmd.Arguments.Add(images);
        cmd.SetAction(parse => CliErrors.Run(() =>
        {
            var results = Run(parse.GetValue(model)!, parse.GetValue(images)!, Math.Max(1, parse.GetValue(top)), parse.GetValue(gpu), parse.GetValue(fallback));
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true }));
                return 0;
            }
            foreach (var r in results)
            {
                var table = new Table().Title(Markup.Escape($"{r.Image}: {r.Label}")).AddColumn("class").AddColumn(new TableColumn("score").RightAligned());
                foreach (var s in r.Top) table.AddRow(Markup.Escape(s.Label), s.Score.ToString("F4"));
                AnsiConsole.Write(table);
            }
            return 0;
        }));
        return cmd;
    }

    /// <summary>One image's result (the JSON schema of --json: an array of these).</summary>
    public sealed record ImageResult(string Image, string Label, IReadOnlyList<ClassScore> Top);

    /// <summary>A class and its probability.</summary>
    public sealed record ClassScore(string Label, float Score);

    /// <summary>Loads the zip and classifies the images.</summary>
    /// <exception cref="FileNotFoundException">The zip or an image does not exist (the message names it).</exception>
    /// <param name="gpuDeviceId">CUDA device for the zip's ONNX stages (MLContext.GpuDeviceId); null = CPU.</param>
    /// <param name="fallbackToCpu">With a device: CPU after one stderr line when CUDA cannot start, else an error.</param>
    public static IReadOnlyList<ImageResult> Run(string modelPath, IReadOnlyList<string> imagePaths, int top, int? gpuDeviceId = null, bool fallbackToCpu = false)
    {
        if (!File.Exists(modelPath)) throw new FileNotFoundException($"Classifier zip '{modelPath}' does not exist.", modelPath);
        foreach (var p in imagePaths)
            if (!File.Exists(p)) throw new FileNotFoundException($"Image '{p}' does not exist.", p);
        var ml = new MLContext(seed: 0);
        if (gpuDeviceId is not null)
        {
            // Decide (and report) once; ML.NET's OnnxTransformer then gets the same answer, so no stage half-starts on CUDA.
            var provider = MLNet.Align.Encoders.OnnxExecution.Resolve("zip chain", gpuDeviceId, fallbackToCpu, Console.Error.WriteLine);
            if (provider != MLNet.Align.Encoders.OnnxExecution.Cpu) { ml.GpuDeviceId = gpuDeviceId; ml.FallbackToCpu = fallbackToCpu; }
        }
        var transformer = ml.Model.Load(modelPath, out _);
        try
        {
            using var engine = ml.Model.CreatePredictionEngine<ZeroShotImageInput, ZeroShotPrediction>(transformer);
            var names = ZeroShotModel.ClassNames(engine.OutputSchema);
            var results = new List<ImageResult>();
            foreach (var p in imagePaths)
            {
                var pred = engine.Predict(new ZeroShotImageInput { ImagePath = Path.GetFullPath(p) });
                var best = ZeroShotModel.TopK(pred.Score, top).Select(i => new ClassScore(names[i], pred.Score[i])).ToList();
                results.Add(new ImageResult(p, pred.Label, best));
            }
            return results;
        }
        finally
        {
            if (transformer is IEnumerable<ITransformer> chain) foreach (var t in chain) (t as IDisposable)?.Dispose();
        }
    }
}
