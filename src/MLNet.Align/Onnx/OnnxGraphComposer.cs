using Onnx;

namespace MLNet.Align.Onnx;

/// <summary>
/// Joins two ONNX graphs into one: the inputs of the second graph that carry the name of an output of the first are
/// fed by it, every other value of the second graph is renamed with a prefix (graph outputs keep their names), opset
/// imports are merged (highest version per domain: join graphs of the same opset, or ones whose operators mean the
/// same at the higher version) and so are metadata_props. Used to fuse the exported image projector with the zero-shot
/// head, and ResNet-18's alpha composite, preprocessing and model (all opset 8), so that an ML.NET zip runs one ONNX
/// stage for each instead of several.
/// </summary>
public static class OnnxGraphComposer
{
    /// <summary>Returns a new model computing <paramref name="second"/> on top of <paramref name="first"/>.</summary>
    /// <param name="first">Producer graph (not modified).</param>
    /// <param name="second">Consumer graph (not modified); no control-flow subgraphs.</param>
    /// <param name="prefix">Prefix of the second graph's internal value and node names (e.g. "head/").</param>
    /// <param name="keepFirstOutputs">Also expose the first graph's outputs as outputs of the result.</param>
    /// <exception cref="ArgumentException">The second graph consumes none of the first graph's outputs, has a
    /// subgraph attribute, or an output name of the second graph collides with a value of the first.</exception>
    public static ModelProto Chain(ModelProto first, ModelProto second, string prefix = "g2/", bool keepFirstOutputs = true)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        var result = first.Clone();
        var g1 = result.Graph;
        var g2 = second.Graph;
        var firstOutputs = g1.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        var firstValues = g1.Node.SelectMany(n => n.Output).Concat(g1.Input.Select(i => i.Name)).Concat(g1.Initializer.Select(i => i.Name))
            .ToHashSet(StringComparer.Ordinal);
        var initializers2 = g2.Initializer.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        var fedInputs = g2.Input.Where(i => !initializers2.Contains(i.Name) && firstOutputs.Contains(i.Name)).Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        if (fedInputs.Count == 0)
            throw new ArgumentException($"Graph '{g2.Name}' consumes none of the outputs of '{g1.Name}' ({string.Join(", ", firstOutputs)}).");
        var outputs2 = g2.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var o in outputs2)
            if (firstValues.Contains(o))
                throw new ArgumentException($"Output '{o}' of graph '{g2.Name}' collides with a value of graph '{g1.Name}'.");

        string Rename(string name) => name.Length == 0 || fedInputs.Contains(name) || outputs2.Contains(name) ? name : prefix + name;

        if (!keepFirstOutputs) g1.Output.Clear();
        foreach (var input in g2.Input)
        {
            if (fedInputs.Contains(input.Name) || initializers2.Contains(input.Name)) continue;
            var copy = input.Clone();
            copy.Name = Rename(input.Name);
            if (!g1.Input.Any(i => i.Name == copy.Name)) g1.Input.Add(copy);
        }
        foreach (var init in g2.Initializer)
        {
            var copy = init.Clone();
            copy.Name = Rename(init.Name);
            g1.Initializer.Add(copy);
        }
        var nodeNames = g1.Node.Select(n => n.Name).Where(n => n.Length > 0).ToHashSet(StringComparer.Ordinal);
        foreach (var node in g2.Node)
        {
            if (node.Attribute.Any(a => a.G != null || a.Graphs.Count > 0))
                throw new ArgumentException($"Node '{node.Name}' ({node.OpType}) of graph '{g2.Name}' has a subgraph; not supported.");
            var copy = node.Clone();
            // Node names are kept when free: ML.NET reads slot names from a node called mlnet.<column>.SlotNames.
            if (copy.Name.Length > 0 && !nodeNames.Add(copy.Name)) copy.Name = prefix + copy.Name;
            for (int i = 0; i < copy.Input.Count; i++) copy.Input[i] = Rename(copy.Input[i]);
            for (int i = 0; i < copy.Output.Count; i++) copy.Output[i] = Rename(copy.Output[i]);
            g1.Node.Add(copy);
        }
        foreach (var vi in g2.ValueInfo)
        {
            var copy = vi.Clone();
            copy.Name = Rename(vi.Name);
            g1.ValueInfo.Add(copy);
        }
        foreach (var o in g2.Output)
            if (!g1.Output.Any(x => x.Name == o.Name)) g1.Output.Add(o.Clone());

        foreach (var op in second.OpsetImport)
        {
            var have = result.OpsetImport.FirstOrDefault(x => x.Domain == op.Domain);
            if (have is null) result.OpsetImport.Add(op.Clone());
            else if (have.Version < op.Version) have.Version = op.Version;
        }
        foreach (var kv in second.MetadataProps)
        {
            var have = result.MetadataProps.FirstOrDefault(x => x.Key == kv.Key);
            if (have is null) result.MetadataProps.Add(kv.Clone());
            else have.Value = kv.Value;
        }
        if (result.IrVersion < second.IrVersion) result.IrVersion = second.IrVersion;
        g1.Name = $"{g1.Name}+{g2.Name}";
        return result;
    }

    /// <summary>Byte-level convenience over <see cref="Chain(ModelProto, ModelProto, string, bool)"/>.</summary>
    public static byte[] Chain(byte[] first, byte[] second, string prefix = "g2/", bool keepFirstOutputs = true)
        => OnnxGraphEditor.ToBytes(Chain(OnnxGraphEditor.Parse(first), OnnxGraphEditor.Parse(second), prefix, keepFirstOutputs));
}
