using Microsoft.ML;
using MLNet.Align.Embeddings;
using MLNet.Align.Encoders;
using MLNet.Align.Projection;
using MLNet.Align.ZeroShot;
using MLNet.Align.Tests.ZeroShot;
using Xunit.Abstractions;
using MLNet.Align.Prompts;

namespace MLNet.Align.Tests.Gpu;

/// <summary>GPU requests on a CPU build (this machine: no GPU, CPU ONNX Runtime, TorchSharp-cpu): the ONNX encoders
/// fall back with one line or throw a clear error; the zip chain follows MLContext.GpuDeviceId / FallbackToCpu;
/// a CUDA training device fails before training and is never serialised.</summary>
[Collection("torch-projection")]
public class DeviceFallbackTests(ITestOutputHelper output)
{
#if !ALIGN_CUDA
    [Fact]
    public void OnnxEncodersFallBackToCpuWithOneLineOrThrow()
    {
        var lines = new List<string>();
        var o = PackagedEncoders.ResNet18Options(batchSize: 2);
        o.GpuDeviceId = 0; o.FallbackToCpu = true; o.Log = lines.Add;
        using (var image = new OnnxImageEncoder(o))
        {
            Assert.Equal(OnnxExecution.Cpu, image.ExecutionProvider);
            var e = image.EncodeBatch([Fixtures.Image("emoji_1f347.png")]);
            Assert.Equal(512, e.Pooled.Columns);
        }
        var fallback = Assert.Single(lines);
        output.WriteLine(fallback);
        Assert.Contains("CUDA requested (GPU device 0) but unavailable", fallback);
        Assert.Contains("falling back to the CPU execution provider", fallback);

        var strict = PackagedEncoders.MiniLMOptions();
        strict.GpuDeviceId = 0; strict.FallbackToCpu = false;
        var ex = Assert.Throws<InvalidOperationException>(() => new OnnxTextEncoder(strict));
        output.WriteLine(ex.Message);
        Assert.Contains("text encoder all-MiniLM-L6-v2", ex.Message);
        Assert.Contains("-p:Cuda=true", ex.Message);

        var cpuLines = new List<string>();
        var cpu = PackagedEncoders.MiniLMOptions();
        cpu.Log = cpuLines.Add;
        using (var text = new OnnxTextEncoder(cpu)) Assert.Equal("CPU", text.ExecutionProvider);
        Assert.Equal("MLNet.Align: text encoder all-MiniLM-L6-v2: ONNX Runtime CPU execution provider.", Assert.Single(cpuLines));
        Assert.Throws<ArgumentOutOfRangeException>(() => OnnxExecution.Resolve("x", -1, true));
    }

    [Fact]
    public void ZipChainFollowsMLContextGpuSettings()
    {
        var ml = new MLContext(42);
        var projector = new MLNet.Align.Tests.ZeroShot.SeededLinearProjector();
        var classes = ClassEmbeddingBuilder.Build(Fixtures.IconClasses, PromptTemplates.IconsAndClipArt, FixtureFeatures.MiniLM, projector);
        var dir = Directory.CreateTempSubdirectory("zip-gpu").FullName;
        var zip = Path.Combine(dir, "c.zip");
        ZeroShotClassifierIO.BuildAndSave(ml, projector, classes, zip);
        var input = new ZeroShotImageInput { ImagePath = Fixtures.Image("emoji_1f347.png") };

        var cpuModel = ml.Model.Load(zip, out _);
        var cpuScore = ml.Model.CreatePredictionEngine<ZeroShotImageInput, ZeroShotPrediction>(cpuModel).Predict(input).Score;

        // ML.NET 5.0.1 honours MLContext.GpuDeviceId when it loads a zip, but its FallbackToCpu catches only
        // OnnxRuntimeException; a CPU-only ONNX Runtime throws EntryPointNotFoundException for the CUDA provider.
        var mlGpu = new MLContext(42) { GpuDeviceId = 0, FallbackToCpu = true };
        var mlEx = Assert.ThrowsAny<Exception>(() => mlGpu.Model.Load(zip, out _));
        output.WriteLine($"plain ML.NET, MLContext.GpuDeviceId = 0, FallbackToCpu = true on a CPU build: {mlEx.GetType().Name}");
        // So `predict` decides the provider first (one line on stderr) and only then hands the device to ML.NET.
        var viaCli = MLNet.Align.Cli.Commands.PredictCommand.Run(zip, [input.ImagePath], 8, gpuDeviceId: 0, fallbackToCpu: true);
        foreach (var s in viaCli[0].Top) Assert.Equal(cpuScore[Array.IndexOf(Fixtures.IconClasses, s.Label)], s.Score);
        var strictCli = Assert.Throws<InvalidOperationException>(() => MLNet.Align.Cli.Commands.PredictCommand.Run(zip, [input.ImagePath], 8, gpuDeviceId: 0, fallbackToCpu: false));
        Assert.Contains("zip chain: CUDA execution provider requested", strictCli.Message);

        // The estimator's own options: fallback builds a CPU chain, a strict request fails with the clear message.
        var fb = new ZeroShotClassifierEstimator(ml, new ZeroShotClassifierEstimator.Options { Projector = projector, Classes = classes, GpuDeviceId = 0, FallbackToCpu = true });
        var fbChain = fb.Fit(ml.Data.LoadFromEnumerable(new List<ZeroShotImageInput>()));
        Assert.Equal(cpuScore, ml.Model.CreatePredictionEngine<ZeroShotImageInput, ZeroShotPrediction>(fbChain).Predict(input).Score);
        var ex = Assert.Throws<InvalidOperationException>(() => new ZeroShotClassifierEstimator(ml, new ZeroShotClassifierEstimator.Options { Projector = projector, Classes = classes, GpuDeviceId = 0, FallbackToCpu = false }));
        Assert.Contains("zero-shot projector + head: CUDA execution provider requested", ex.Message);
        foreach (var t in fbChain) (t as IDisposable)?.Dispose();
        foreach (var t in (IEnumerable<ITransformer>)cpuModel) (t as IDisposable)?.Dispose();
        Directory.Delete(dir, true);
    }
#endif

    [Fact]
    public void TrainingDeviceIsValidatedAndNeverSerialised()
    {
        Assert.Equal((false, 0), AlignmentTrainingOptions.ParseDevice("cpu"));
        Assert.Equal((true, 0), AlignmentTrainingOptions.ParseDevice("cuda"));
        Assert.Equal((true, 2), AlignmentTrainingOptions.ParseDevice("CUDA:2"));
        foreach (var bad in new[] { "gpu", "cuda:", "cuda:-1", "cuda:x", "" })
            Assert.Contains("Device must be", Assert.Throws<ArgumentException>(() => AlignmentTrainingOptions.ParseDevice(bad)).Message);
        var options = new AlignmentOptions { Training = new AlignmentTrainingOptions { Device = "cuda:1", Epochs = 1, BatchSize = 8 } };
        var json = options.ToJson();
        Assert.DoesNotContain("cuda", json, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Device", json);
        Assert.Equal("cpu", AlignmentOptions.FromJson(json).Training.Device);
        Assert.Throws<ArgumentException>(() => new AlignmentTrainer(options with { Training = options.Training with { Device = "tpu" } }));

#if !ALIGN_TORCH_CUDA
        var data = new InMemoryAlignmentData(FixtureFeatures.Images.Pooled, FixtureFeatures.Texts.Pooled);
        var ex = Assert.Throws<InvalidOperationException>(() => new AlignmentTrainer(options).Fit(data));
        output.WriteLine(ex.Message);
        Assert.Contains("'cuda:1'", ex.Message);
        Assert.Contains("-p:TorchCuda=true", ex.Message);
#endif
    }
}
