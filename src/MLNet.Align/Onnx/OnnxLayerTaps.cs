using Onnx;

namespace MLNet.Align.Onnx;

/// <summary>
/// Exposes intermediate layers of an ONNX image model as pooled embeddings, so that layers (not only whole models)
/// can be stage-1 candidates (STRUCTURE, NeurIPS 2025, aligns the most similar layer). Each tapped value (a CNN
/// feature map [N, C, H, W]) gets a <c>GlobalAveragePool</c> node ([N, C, 1, 1]); the pooled taps are concatenated
/// along the channel axis into one extra graph output [N, ΣC, 1, 1], so one session run yields every layer.
/// </summary>
public static class OnnxLayerTaps
{
    /// <summary>Adds the pooled, concatenated taps of <paramref name="valueNames"/> as graph output
    /// <paramref name="outputName"/> ([batch, ΣC, 1, 1], float). Weights and existing nodes are unchanged.</summary>
    /// <param name="model">The model, edited in place.</param>
    /// <param name="valueNames">Existing node outputs holding [N, C, H, W] feature maps, in output channel order.</param>
    /// <param name="outputName">Name of the new graph output (must not exist yet).</param>
    /// <exception cref="ArgumentException">No value names, a value no node produces (the message lists the graph's node
    /// outputs), or <paramref name="outputName"/> already in use.</exception>
    public static void AddPooledConcatOutput(ModelProto model, IReadOnlyList<string> valueNames, string outputName)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(valueNames);
        if (valueNames.Count == 0) throw new ArgumentException("Give at least one value to tap.", nameof(valueNames));
        var graph = model.Graph;
        var produced = new HashSet<string>(graph.Node.SelectMany(n => n.Output), StringComparer.Ordinal);
        if (produced.Contains(outputName) || graph.Output.Any(o => o.Name == outputName))
            throw new ArgumentException($"The ONNX graph already has a value named '{outputName}'.", nameof(outputName));
        var pooled = new List<string>();
        foreach (var v in valueNames)
        {
            if (!produced.Contains(v))
                throw new ArgumentException($"The ONNX graph has no value named '{v}'. Node outputs: {string.Join(", ", graph.Node.SelectMany(n => n.Output).Take(200))}", nameof(valueNames));
            string p = $"{outputName}__gap_{pooled.Count}";
            var gap = new NodeProto { Name = p, OpType = "GlobalAveragePool" };
            gap.Input.Add(v);
            gap.Output.Add(p);
            graph.Node.Add(gap);
            pooled.Add(p);
        }
        var concat = new NodeProto { Name = outputName + "__concat", OpType = "Concat" };
        concat.Input.AddRange(pooled);
        concat.Output.Add(outputName);
        concat.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
        graph.Node.Add(concat);
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "batch" });
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "channels" });
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = 1 });
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = 1 });
        graph.Output.Add(new ValueInfoProto
        {
            Name = outputName,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        });
    }
}
