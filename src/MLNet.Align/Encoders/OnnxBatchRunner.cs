using Microsoft.ML.OnnxRuntime;
using MLNet.Align.Onnx;

namespace MLNet.Align.Encoders;

/// <summary>One output tensor of a run: values row-major and shape (batch first).</summary>
internal sealed record OutputTensor(float[] Data, long[] Shape);

/// <summary>
/// Runs an ONNX model with one float input on whole batches. Models whose batch dimension is fixed to 1 are made
/// batchable by editing the graph (<see cref="OnnxGraphEditor.MakeBatchSymbolic"/>) and checked by measurement
/// (a batch of 2 must equal two runs of 1); if the edit is impossible or the check fails, it runs item by item.
/// </summary>
internal sealed class OnnxBatchRunner : IDisposable
{
    /// <summary>Tolerance of the batch-edit check: |batched - single| &lt;= Tol * (1 + |single|).</summary>
    private const float CheckTolerance = 1e-4f;

    private readonly InferenceSession _session;

    public OnnxBatchRunner(byte[] modelBytes, string what, string? inputName, IReadOnlyList<string> requiredOutputs,
        IReadOnlyList<string> extraGraphOutputs, bool allowBatchEdit, int intraOpThreads, string provider = OnnxExecution.Cpu)
    {
        ExecutionProvider = provider;
        var model = OnnxGraphEditor.Parse(modelBytes);
        var inputs = OnnxGraphEditor.InputNames(model);
        if (inputName is null)
        {
            if (inputs.Count != 1)
                throw new ArgumentException($"The {what} has {inputs.Count} inputs ({string.Join(", ", inputs)}); name the one to feed.");
            inputName = inputs[0];
        }
        else if (!inputs.Contains(inputName))
        {
            throw new ArgumentException($"The {what} has no input named '{inputName}'. Its inputs: {string.Join(", ", inputs)}.");
        }
        InputName = inputName;

        bool edited = false;
        foreach (var extra in extraGraphOutputs)
        {
            if (model.Graph.Output.Any(o => o.Name == extra)) continue;
            try { OnnxGraphEditor.AddOutput(model, extra); }
            catch (ArgumentException e) { throw new ArgumentException($"The {what} has no output or intermediate value named '{extra}'. {e.Message}", e); }
            edited = true;
        }
        var graphOutputs = model.Graph.Output.Select(o => o.Name).ToArray();
        foreach (var name in requiredOutputs)
            if (!graphOutputs.Contains(name))
                throw new ArgumentException($"The {what} has no output named '{name}'. Its outputs: {string.Join(", ", graphOutputs)}.");

        long? fixedBatch = OnnxGraphEditor.LeadingDim(model, inputName);
        BatchMode = fixedBatch is null ? ImageBatchMode.Native : ImageBatchMode.PerItem;
        BatchEditReport = fixedBatch is null ? "batch dimension already symbolic" : $"batch dimension fixed to {fixedBatch}";
        if (fixedBatch is not null && fixedBatch != 1)
            throw new NotSupportedException($"The {what} has its batch dimension fixed to {fixedBatch}; only 1 or symbolic is supported.");

        byte[] perItemBytes = edited ? OnnxGraphEditor.ToBytes(model) : modelBytes;
        _options = OnnxExecution.CreateOptions(intraOpThreads, provider);
        if (fixedBatch == 1 && allowBatchEdit)
        {
            var result = OnnxGraphEditor.MakeBatchSymbolic(model);
            if (result.Hazards.Count > 0)
            {
                BatchEditReport = $"batch edit refused, per-item runs: {string.Join("; ", result.Hazards)}";
            }
            else
            {
                InferenceSession? editedSession = null;
                try
                {
                    editedSession = new InferenceSession(OnnxGraphEditor.ToBytes(model), _options);
                    _session = editedSession;
                    BatchMode = ImageBatchMode.GraphEdited;
                    BatchCheckMaxAbsDiff = MeasureBatchConsistency();
                    if (BatchCheckMaxAbsDiff <= CheckTolerance)
                    {
                        BatchEditReport = $"batch dimension made symbolic; check max |batch-single| = {BatchCheckMaxAbsDiff:G3}";
                        return;
                    }
                    BatchEditReport = $"batch edit failed its check (max |batch-single| = {BatchCheckMaxAbsDiff:G3}), per-item runs";
                }
                catch (OnnxRuntimeException e)
                {
                    BatchEditReport = $"batch edit failed to run ({e.Message}), per-item runs";
                }
                editedSession?.Dispose();
                BatchMode = ImageBatchMode.PerItem;
            }
        }
        _session = new InferenceSession(perItemBytes, _options);
    }

    private readonly SessionOptions _options;

    public string InputName { get; }

    /// <summary>"CPU" or "CUDA:N" (see <see cref="OnnxExecution.Resolve"/>).</summary>
    public string ExecutionProvider { get; }

    public ImageBatchMode BatchMode { get; private set; }

    /// <summary>Human-readable account of the batch handling (edit, check result or fallback reason).</summary>
    public string BatchEditReport { get; private set; }

    /// <summary>Largest |batched - single| / (1 + |single|) measured by the batch-edit check; null when no edit was made.</summary>
    public float? BatchCheckMaxAbsDiff { get; private set; }

    /// <summary>The input's dimensions after the batch, from the session metadata (-1 where symbolic).</summary>
    public int[] InputItemDims => _session.InputMetadata[InputName].Dimensions.Skip(1).ToArray();

    internal static SessionOptions CreateOptions(int intraOpThreads) => OnnxExecution.CreateOptions(intraOpThreads, OnnxExecution.Cpu);

    /// <summary>Runs <paramref name="count"/> items whose inputs are stacked in <paramref name="input"/>
    /// (item shape <paramref name="itemShape"/>); returns the requested outputs with the batch stacked.</summary>
    public OutputTensor[] Run(float[] input, int count, long[] itemShape, IReadOnlyList<string> outputNames)
    {
        if (BatchMode != ImageBatchMode.PerItem || count == 1)
            return RunOnce(input, count, itemShape, outputNames);
        int itemLen = input.Length / count;
        var parts = new List<OutputTensor[]>(count);
        for (int i = 0; i < count; i++)
            parts.Add(RunOnce(input.AsSpan(i * itemLen, itemLen).ToArray(), 1, itemShape, outputNames));
        var result = new OutputTensor[outputNames.Count];
        for (int o = 0; o < outputNames.Count; o++)
        {
            int len = parts[0][o].Data.Length;
            var data = new float[len * count];
            for (int i = 0; i < count; i++) parts[i][o].Data.CopyTo(data, i * len);
            var shape = (long[])parts[0][o].Shape.Clone();
            shape[0] = count;
            result[o] = new OutputTensor(data, shape);
        }
        return result;
    }

    private OutputTensor[] RunOnce(float[] input, int count, long[] itemShape, IReadOnlyList<string> outputNames)
    {
        var shape = new long[itemShape.Length + 1];
        shape[0] = count;
        itemShape.CopyTo(shape, 1);
        using var value = OrtValue.CreateTensorValueFromMemory(input, shape);
        using var runOptions = new RunOptions();
        using var outputs = _session.Run(runOptions, [InputName], [value], outputNames.ToArray());
        var result = new OutputTensor[outputNames.Count];
        int k = 0;
        foreach (var o in outputs)
            result[k++] = new OutputTensor(o.GetTensorDataAsSpan<float>().ToArray(), o.GetTensorTypeAndShape().Shape);
        return result;
    }

    /// <summary>Runs two different synthetic items as one batch and one by one; returns the largest relative difference.</summary>
    private float MeasureBatchConsistency()
    {
        var dims = _session.InputMetadata[InputName].Dimensions.Skip(1).Select(d => (long)d).ToArray();
        if (dims.Any(d => d <= 0)) return float.PositiveInfinity; // cannot synthesise an input of unknown size
        int len = (int)dims.Aggregate(1L, (a, b) => a * b);
        var rng = new Random(1234);
        var both = new float[2 * len];
        for (int i = 0; i < both.Length; i++) both[i] = (float)(rng.NextDouble() * 4 - 2) * (i < len ? 1 : 40);
        var outputs = _session.OutputMetadata.Keys.ToArray();
        var batched = RunOnce(both, 2, dims, outputs);
        float worst = 0;
        for (int item = 0; item < 2; item++)
        {
            var single = RunOnce(both.AsSpan(item * len, len).ToArray(), 1, dims, outputs);
            for (int o = 0; o < outputs.Length; o++)
            {
                int olen = single[o].Data.Length;
                if (batched[o].Data.Length != 2 * olen) return float.PositiveInfinity;
                for (int j = 0; j < olen; j++)
                {
                    float s = single[o].Data[j];
                    float d = Math.Abs(batched[o].Data[item * olen + j] - s) / (1 + Math.Abs(s));
                    if (!(d <= worst)) worst = d; // NaN-safe
                }
            }
        }
        return worst;
    }

    public void Dispose()
    {
        _session.Dispose();
        _options.Dispose();
    }
}
