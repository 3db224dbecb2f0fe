using Google.Protobuf;
using Onnx;

namespace MLNet.Align.Onnx;

/// <summary>
/// A small builder of ONNX graphs (OnnxSharp protobuf object model) for exporting trained projectors and heads.
/// Float32 only; symbolic dimensions are written as strings (e.g. "batch"). Default opset 20 (exact-erf Gelu,
/// LayerNormalization), which ONNX Runtime 1.31 and ML.NET's OnnxTransformer run.
/// </summary>
internal sealed class OnnxGraphBuilder
{
    private readonly GraphProto _graph;
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private int _counter;
    private readonly Dictionary<string, long> _extraOpsets = new(StringComparer.Ordinal);

    /// <summary>Starts an empty graph named <paramref name="graphName"/>.</summary>
    public OnnxGraphBuilder(string graphName, long opset = 20)
    {
        _graph = new GraphProto { Name = graphName };
        Opset = opset;
    }

    /// <summary>The default-domain opset version the model declares.</summary>
    public long Opset { get; }

    /// <summary>Declares an extra operator-set import (e.g. "ai.onnx.ml", 2 for LabelEncoder), needed by nodes of
    /// that domain.</summary>
    public void UseOpset(string domain, long version) => _extraOpsets[domain] = version;

    /// <summary>Adds a graph input; each dim is an int (fixed) or a string (symbolic).</summary>
    public string Input(string name, TensorProto.Types.DataType type, params object[] dims)
    {
        Reserve(name);
        _graph.Input.Add(ValueInfo(name, type, dims));
        return name;
    }

    /// <summary>Adds a float32 graph input.</summary>
    public string Input(string name, params object[] dims) => Input(name, TensorProto.Types.DataType.Float, dims);

    /// <summary>Declares <paramref name="name"/> (an existing value) as a graph output.</summary>
    public void Output(string name, TensorProto.Types.DataType type, params object[] dims) => _graph.Output.Add(ValueInfo(name, type, dims));

    /// <summary>Declares a float32 graph output.</summary>
    public void Output(string name, params object[] dims) => Output(name, TensorProto.Types.DataType.Float, dims);

    /// <summary>Adds a float32 initializer of the given shape (values row-major).</summary>
    /// <exception cref="ArgumentException">values.Length does not match the shape.</exception>
    public string Constant(string name, ReadOnlySpan<float> values, params long[] shape)
    {
        long n = 1; foreach (var d in shape) n *= d;
        if (n != values.Length) throw new ArgumentException($"Initializer '{name}' has {values.Length} values, shape [{string.Join(",", shape)}] needs {n}.");
        name = Unique(name);
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(shape);
        t.RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values));
        _graph.Initializer.Add(t);
        return name;
    }

    /// <summary>Adds an int64 initializer (shapes, axes).</summary>
    public string ConstantInt64(string name, long[] values, params long[] shape)
    {
        name = Unique(name);
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Dims.AddRange(shape.Length == 0 && values.Length != 1 ? new long[] { values.Length } : shape);
        t.Int64Data.AddRange(values);
        _graph.Initializer.Add(t);
        return name;
    }

    /// <summary>Adds a string initializer (e.g. class names), 1-D.</summary>
    public string ConstantStrings(string name, IReadOnlyList<string> values)
    {
        name = Unique(name);
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.String };
        t.Dims.Add(values.Count);
        foreach (var v in values) t.StringData.Add(ByteString.CopyFromUtf8(v));
        _graph.Initializer.Add(t);
        return name;
    }

    /// <summary>Adds a node; returns its output names (fresh unique names unless <paramref name="outputs"/> are given).</summary>
    public string[] Node(string opType, string[] inputs, int outputCount = 1, string[]? outputs = null,
        IReadOnlyDictionary<string, object>? attributes = null, string domain = "")
    {
        outputs ??= Enumerable.Range(0, outputCount).Select(_ => Unique(opType.ToLowerInvariant())).ToArray();
        foreach (var o in outputs) _names.Add(o);
        var node = new NodeProto { OpType = opType, Name = Unique("n_" + opType), Domain = domain };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        if (attributes != null)
            foreach (var (k, v) in attributes) node.Attribute.Add(Attribute(k, v));
        _graph.Node.Add(node);
        return outputs;
    }

    /// <summary>Adds a single-output node and returns its output name.</summary>
    public string Op(string opType, params string[] inputs) => Node(opType, inputs)[0];

    /// <summary>Adds a single-output node with attributes and returns its output name.</summary>
    public string Op(string opType, string[] inputs, IReadOnlyDictionary<string, object> attributes, string? output = null)
        => Node(opType, inputs, 1, output == null ? null : new[] { output }, attributes)[0];

    /// <summary>y = x W^T + b for a row-major weight [outDim, inDim] as TorchSharp's Linear stores it; x is [..., inDim].</summary>
    public string Linear(string x, float[] weight, float[]? bias, int outDim, int inDim, string name)
    {
        // MatMul with W^T (stored transposed once here) works for any leading rank, unlike Gemm.
        var wt = new float[weight.Length];
        for (int o = 0; o < outDim; o++)
            for (int i = 0; i < inDim; i++)
                wt[i * outDim + o] = weight[o * inDim + i];
        var w = Constant(name + ".weight_t", wt, inDim, outDim);
        var y = Op("MatMul", x, w);
        if (bias == null) return y;
        var b = Constant(name + ".bias", bias, outDim);
        return Op("Add", y, b);
    }

    /// <summary>LayerNormalization over the last axis (opset 17+).</summary>
    public string LayerNorm(string x, float[] gamma, float[] beta, float epsilon, string name)
    {
        var g = Constant(name + ".weight", gamma, gamma.Length);
        var b = Constant(name + ".bias", beta, beta.Length);
        return Op("LayerNormalization", new[] { x, g, b }, new Dictionary<string, object> { ["axis"] = -1L, ["epsilon"] = epsilon });
    }

    /// <summary>Exact (erf) GELU, as torch.nn.GELU() default (opset 20 Gelu).</summary>
    public string Gelu(string x) => Op("Gelu", x);

    /// <summary>x / max(||x||_2, eps) over the last axis, as torch.nn.functional.normalize (eps 1e-12).</summary>
    public string L2Normalize(string x, float epsilon = 1e-12f)
    {
        var sq = Op("Mul", x, x);
        var axes = ConstantInt64("l2_axes", new long[] { -1 }, 1);
        var sum = Op("ReduceSum", new[] { sq, axes }, new Dictionary<string, object> { ["keepdims"] = 1L });
        var norm = Op("Sqrt", sum);
        var eps = Constant("l2_eps", new[] { epsilon }, 1);
        var denom = Op("Max", norm, eps);
        return Op("Div", x, denom);
    }

    /// <summary>Builds the model (IR version 9).</summary>
    public ModelProto Build(string producer = "MLNet.Align", string? docString = null)
    {
        var model = new ModelProto
        {
            IrVersion = 9,
            ProducerName = producer,
            ProducerVersion = typeof(OnnxGraphBuilder).Assembly.GetName().Version?.ToString() ?? "0",
            Graph = _graph,
            DocString = docString ?? "",
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        foreach (var (domain, version) in _extraOpsets)
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = domain, Version = version });
        return model;
    }

    /// <summary>Serialises the model to bytes (what InferenceSession and ApplyOnnxModel(Stream) take).</summary>
    public byte[] ToBytes(string producer = "MLNet.Align", string? docString = null) => Build(producer, docString).ToByteArray();

    /// <summary>Adds a string-valued metadata entry to a built model.</summary>
    public static void AddMetadata(ModelProto model, string key, string value)
        => model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });

    private string Unique(string stem)
    {
        string name = stem;
        while (_names.Contains(name)) name = $"{stem}_{++_counter}";
        _names.Add(name);
        return name;
    }

    private void Reserve(string name)
    {
        if (!_names.Add(name)) throw new ArgumentException($"Name '{name}' is already used in graph '{_graph.Name}'.");
    }

    private static ValueInfoProto ValueInfo(string name, TensorProto.Types.DataType type, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
        {
            var dim = new TensorShapeProto.Types.Dimension();
            switch (d)
            {
                case string s: dim.DimParam = s; break;
                case int i: dim.DimValue = i; break;
                case long l: dim.DimValue = l; break;
                default: throw new ArgumentException($"Dimension {d} of '{name}' must be int, long or string.");
            }
            shape.Dim.Add(dim);
        }
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    private static AttributeProto Attribute(string name, object value)
    {
        var a = new AttributeProto { Name = name };
        switch (value)
        {
            case long l: a.Type = AttributeProto.Types.AttributeType.Int; a.I = l; break;
            case int i: a.Type = AttributeProto.Types.AttributeType.Int; a.I = i; break;
            case float f: a.Type = AttributeProto.Types.AttributeType.Float; a.F = f; break;
            case string s: a.Type = AttributeProto.Types.AttributeType.String; a.S = ByteString.CopyFromUtf8(s); break;
            case long[] ls: a.Type = AttributeProto.Types.AttributeType.Ints; a.Ints.AddRange(ls); break;
            case float[] fs: a.Type = AttributeProto.Types.AttributeType.Floats; a.Floats.AddRange(fs); break;
            case string[] ss: a.Type = AttributeProto.Types.AttributeType.Strings; foreach (var s in ss) a.Strings.Add(ByteString.CopyFromUtf8(s)); break;
            case TensorProto t: a.Type = AttributeProto.Types.AttributeType.Tensor; a.T = t; break;
            default: throw new ArgumentException($"Unsupported attribute type {value.GetType()} for '{name}'.");
        }
        return a;
    }
}
