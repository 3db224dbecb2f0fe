using System.Collections.Concurrent;
using Microsoft.ML.OnnxRuntime;
using MLNet.Align.Onnx;

namespace MLNet.Align.Encoders;

/// <summary>
/// Which ONNX Runtime execution provider the encoders use, after ML.NET's convention (<c>MLContext.GpuDeviceId</c> /
/// <c>FallbackToCpu</c>, ApplyOnnxModel's <c>gpuDeviceId</c> / <c>fallbackToCpu</c>): a GPU device id asks for the
/// CUDA execution provider; when CUDA cannot start (a CPU-only ONNX Runtime build, no driver, no such device) the
/// encoder either falls back to CPU with one warning line or throws. CUDA needs the GPU native package: build with
/// <c>-p:Cuda=true</c> (Microsoft.ML.OnnxRuntime.Gpu). Availability is checked by creating a session (the provider
/// list of a build says what is compiled in, not what works) once per device and process.
/// </summary>
public static class OnnxExecution
{
    private static readonly ConcurrentDictionary<int, string?> s_cudaFailure = new();

    /// <summary>Provider name for a CPU session.</summary>
    public const string Cpu = "CPU";

    /// <summary>Decides the provider for <paramref name="gpuDeviceId"/>: "CPU" when null; "CUDA:N" when CUDA starts on
    /// device N; otherwise "CPU" with a warning line through <paramref name="log"/> (stderr when null) if
    /// <paramref name="fallbackToCpu"/>, else an exception.</summary>
    /// <param name="what">What is being opened, for the messages (e.g. "image encoder resnet18").</param>
    /// <param name="gpuDeviceId">CUDA device index (0, 1, ...); null = CPU.</param>
    /// <param name="fallbackToCpu">Run on CPU when CUDA cannot start instead of throwing.</param>
    /// <param name="log">Receives one line naming the provider that runs (and the reason for a fallback).</param>
    /// <exception cref="ArgumentOutOfRangeException">Negative device id.</exception>
    /// <exception cref="InvalidOperationException">CUDA requested, unavailable, and no fallback (the message says why
    /// and what to do).</exception>
    public static string Resolve(string what, int? gpuDeviceId, bool fallbackToCpu, Action<string>? log = null)
    {
        if (gpuDeviceId is null)
        {
            log?.Invoke($"MLNet.Align: {what}: ONNX Runtime CPU execution provider.");
            return Cpu;
        }
        int id = gpuDeviceId.Value;
        if (id < 0) throw new ArgumentOutOfRangeException(nameof(gpuDeviceId), id, "GPU device id must be >= 0 (or null for CPU).");
        var failure = s_cudaFailure.GetOrAdd(id, ProbeCuda);
        if (failure is null)
        {
            log?.Invoke($"MLNet.Align: {what}: ONNX Runtime CUDA execution provider, device {id}.");
            return $"CUDA:{id}";
        }
        if (!fallbackToCpu)
            throw new InvalidOperationException($"{what}: CUDA execution provider requested (GPU device {id}) but it cannot start: {failure}. " +
                "Build with -p:Cuda=true (Microsoft.ML.OnnxRuntime.Gpu) on a machine with an NVIDIA driver and CUDA 12 / cuDNN 9, pick an existing device, or allow the CPU fallback (FallbackToCpu / --fallback-to-cpu).");
        (log ?? Console.Error.WriteLine)($"MLNet.Align: {what}: CUDA requested (GPU device {id}) but unavailable ({failure}); falling back to the CPU execution provider.");
        return Cpu;
    }

    /// <summary>Session options for <paramref name="provider"/> ("CPU" or "CUDA:N", from <see cref="Resolve"/>).</summary>
    internal static SessionOptions CreateOptions(int intraOpThreads, string provider)
    {
        var o = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        if (intraOpThreads > 0) o.IntraOpNumThreads = intraOpThreads;
        if (provider.StartsWith("CUDA:", StringComparison.Ordinal))
        {
            try { o.AppendExecutionProvider_CUDA(int.Parse(provider.AsSpan(5), provider: System.Globalization.CultureInfo.InvariantCulture)); }
            catch { o.Dispose(); throw; }
        }
        return o;
    }

    /// <summary>Null when a session with the CUDA provider on device <paramref name="id"/> starts and runs; else the reason.</summary>
    private static string? ProbeCuda(int id)
    {
        try
        {
            using var options = new SessionOptions();
            options.AppendExecutionProvider_CUDA(id);
            var g = new OnnxGraphBuilder("cuda_probe");
            var x = g.Input("x", 1, 4);
            g.Node("Relu", [x], outputs: ["y"]);
            g.Output("y", 1, 4);
            using var session = new InferenceSession(g.ToBytes(), options);
            using var value = OrtValue.CreateTensorValueFromMemory(new float[4], [1, 4]);
            using var run = new RunOptions();
            using var _ = session.Run(run, ["x"], [value], ["y"]);
            return null;
        }
        catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException or TypeInitializationException or InvalidOperationException)
        {
            var msg = e.Message.Split('\n')[0].Trim();
            return msg.Length > 300 ? msg[..300] + "..." : msg;
        }
    }
}
