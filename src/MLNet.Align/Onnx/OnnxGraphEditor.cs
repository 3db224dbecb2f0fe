using Google.Protobuf;
using Onnx;

namespace MLNet.Align.Onnx;

/// <summary>What <see cref="OnnxGraphEditor.MakeBatchSymbolic"/> did to a model.</summary>
/// <param name="Changed">True when at least one input or output had a fixed leading dimension replaced.</param>
/// <param name="Hazards">Nodes that may hard-code the batch size (e.g. a Reshape to a constant shape whose first value is
/// a positive number); empty when none was found. With hazards, the edited model must not be trusted without a check.</param>
internal sealed record BatchEditResult(bool Changed, IReadOnlyList<string> Hazards);

/// <summary>
/// Edits of existing ONNX graphs (OnnxSharp protobuf object model), used to make exported models with a batch fixed
/// to 1 (e.g. the ResNet-18 of Microsoft.ML.DnnImageFeaturizer.ResNet18) run whole batches, and to expose an
/// intermediate value (a last feature map) as an extra graph output for token-level features.
/// </summary>
internal static class OnnxGraphEditor
{
    /// <summary>Parses ONNX model bytes.</summary>
    /// <exception cref="InvalidDataException">The bytes are not an ONNX model.</exception>
    public static ModelProto Parse(byte[] modelBytes)
    {
        ArgumentNullException.ThrowIfNull(modelBytes);
        try
        {
            var model = ModelProto.Parser.ParseFrom(modelBytes);
            if (model.Graph is null) throw new InvalidDataException("The ONNX model has no graph.");
            return model;
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"Not an ONNX model ({modelBytes.Length} bytes): {e.Message}", e);
        }
    }

    /// <summary>Serialises a model to bytes.</summary>
    public static byte[] ToBytes(ModelProto model) => model.ToByteArray();

    /// <summary>
    /// Replaces the leading (batch) dimension of every graph input (initializers excepted) and every graph output with
    /// the symbolic dimension <paramref name="dimName"/>, and clears the intermediate <c>value_info</c> shapes (they were
    /// inferred for batch 1; ONNX Runtime re-infers them). Then scans for nodes that could still hard-code the batch.
    /// </summary>
    /// <remarks>Only the declared shapes change; weights and nodes are untouched, so a graph whose operators are all
    /// batch-agnostic (Conv, BatchNormalization, Relu, Add, pooling, ...) computes exactly what it computed per item.
    /// Run a measured check (batch of 2 vs two batches of 1) before relying on it; see <see cref="BatchEditResult"/>.</remarks>
    public static BatchEditResult MakeBatchSymbolic(ModelProto model, string dimName = "batch")
    {
        ArgumentNullException.ThrowIfNull(model);
        var graph = model.Graph;
        var initializers = new HashSet<string>(graph.Initializer.Select(t => t.Name), StringComparer.Ordinal);
        bool changed = false;
        foreach (var vi in graph.Input.Where(v => !initializers.Contains(v.Name)).Concat(graph.Output))
            changed |= SetLeadingDim(vi, dimName);
        graph.ValueInfo.Clear();
        return new BatchEditResult(changed, FindBatchHazards(model));
    }

    /// <summary>
    /// Declares the existing intermediate value <paramref name="valueName"/> as an additional float graph output with a
    /// symbolic batch dimension (rank taken from its <c>value_info</c> when present; otherwise the shape is left unknown).
    /// Does nothing when it is already an output.
    /// </summary>
    /// <exception cref="ArgumentException">No node produces <paramref name="valueName"/>; the message lists the candidate
    /// values of the graph (node outputs).</exception>
    public static void AddOutput(ModelProto model, string valueName, string dimName = "batch")
    {
        ArgumentNullException.ThrowIfNull(model);
        var graph = model.Graph;
        if (graph.Output.Any(o => o.Name == valueName)) return;
        if (!graph.Node.Any(n => n.Output.Contains(valueName)))
            throw new ArgumentException(
                $"The ONNX graph has no value named '{valueName}'. Node outputs: {string.Join(", ", graph.Node.SelectMany(n => n.Output).Take(200))}",
                nameof(valueName));
        var known = graph.ValueInfo.FirstOrDefault(v => v.Name == valueName);
        ValueInfoProto output;
        if (known is not null)
        {
            output = known.Clone();
            SetLeadingDim(output, dimName);
        }
        else
        {
            output = new ValueInfoProto
            {
                Name = valueName,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
            };
        }
        graph.Output.Add(output);
    }

    /// <summary>Names of the graph inputs that are fed by the caller (initializers excluded).</summary>
    public static IReadOnlyList<string> InputNames(ModelProto model)
    {
        var initializers = new HashSet<string>(model.Graph.Initializer.Select(t => t.Name), StringComparer.Ordinal);
        return model.Graph.Input.Where(v => !initializers.Contains(v.Name)).Select(v => v.Name).ToArray();
    }

    /// <summary>
    /// Renames the value <paramref name="from"/> to <paramref name="to"/> everywhere in the graph: node inputs and
    /// outputs, graph inputs and outputs, value_info and initializers (subgraphs are not visited). Used to wire two
    /// graphs together by name (<see cref="OnnxGraphComposer"/>) and to let a graph output carry the name of the ML.NET
    /// column it fills, so that no CopyColumns stage is needed after ApplyOnnxModel.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="from"/> is not a value of the graph, or
    /// <paramref name="to"/> already is one.</exception>
    public static void RenameValue(ModelProto model, string from, string to)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(from);
        ArgumentException.ThrowIfNullOrEmpty(to);
        if (from == to) return;
        var g = model.Graph;
        var values = g.Node.SelectMany(n => n.Input.Concat(n.Output)).Concat(g.Input.Select(i => i.Name))
            .Concat(g.Output.Select(o => o.Name)).Concat(g.Initializer.Select(i => i.Name)).ToHashSet(StringComparer.Ordinal);
        if (!values.Contains(from)) throw new ArgumentException($"The ONNX graph '{g.Name}' has no value named '{from}'.", nameof(from));
        if (values.Contains(to)) throw new ArgumentException($"The ONNX graph '{g.Name}' already has a value named '{to}'; cannot rename '{from}' to it.", nameof(to));
        foreach (var n in g.Node)
        {
            for (int i = 0; i < n.Input.Count; i++) if (n.Input[i] == from) n.Input[i] = to;
            for (int i = 0; i < n.Output.Count; i++) if (n.Output[i] == from) n.Output[i] = to;
        }
        foreach (var v in g.Input.Concat(g.Output).Concat(g.ValueInfo)) if (v.Name == from) v.Name = to;
        foreach (var t in g.Initializer) if (t.Name == from) t.Name = to;
    }

    /// <summary>The leading dimension of graph input or output <paramref name="name"/>: a positive number when fixed,
    /// null when symbolic or unknown.</summary>
    public static long? LeadingDim(ModelProto model, string name)
    {
        var vi = model.Graph.Input.Concat(model.Graph.Output).FirstOrDefault(v => v.Name == name);
        var dims = vi?.Type?.TensorType?.Shape?.Dim;
        if (dims is null || dims.Count == 0) return null;
        return dims[0].ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? dims[0].DimValue : null;
    }

    /// <summary>
    /// Nodes that may hard-code the batch size: Reshape/Expand/Tile/ConstantOfShape whose shape-like input is a constant
    /// (initializer or Constant node) with a positive first value. Reshape to [0, ...] or [-1, ...] is batch-agnostic.
    /// </summary>
    public static IReadOnlyList<string> FindBatchHazards(ModelProto model)
    {
        var graph = model.Graph;
        var constants = new Dictionary<string, TensorProto>(StringComparer.Ordinal);
        foreach (var t in graph.Initializer) constants[t.Name] = t;
        foreach (var n in graph.Node.Where(n => n.OpType == "Constant"))
        {
            var value = n.Attribute.FirstOrDefault(a => a.Name == "value")?.T;
            if (value is not null && n.Output.Count > 0) constants[n.Output[0]] = value;
        }
        var hazards = new List<string>();
        foreach (var n in graph.Node)
        {
            int shapeInput = n.OpType switch { "Reshape" or "Expand" or "Tile" => 1, "ConstantOfShape" => 0, _ => -1 };
            if (shapeInput < 0) continue;
            if (n.Input.Count <= shapeInput) continue;
            if (!constants.TryGetValue(n.Input[shapeInput], out var shape)) continue;
            long? first = FirstInt64(shape);
            if (first is > 0 && !(n.OpType == "Tile" && first == 1))
                hazards.Add($"{n.OpType} node '{n.Name}' (output '{n.Output.FirstOrDefault()}') uses constant shape starting with {first}");
        }
        return hazards;
    }

    private static long? FirstInt64(TensorProto t)
    {
        if (t.Int64Data.Count > 0) return t.Int64Data[0];
        if (t.DataType == (int)TensorProto.Types.DataType.Int64 && t.RawData.Length >= 8)
            return BitConverter.ToInt64(t.RawData.Span[..8]);
        return null;
    }

    private static bool SetLeadingDim(ValueInfoProto vi, string dimName)
    {
        var dims = vi.Type?.TensorType?.Shape?.Dim;
        if (dims is null || dims.Count == 0) return false;
        if (dims[0].ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimParam && dims[0].DimParam == dimName) return false;
        dims[0] = new TensorShapeProto.Types.Dimension { DimParam = dimName };
        return true;
    }
}
