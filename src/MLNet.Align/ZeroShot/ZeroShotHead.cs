using System.Numerics.Tensors;
using System.Text.Json;
using MLNet.Align.Embeddings;
using MLNet.Align.Onnx;
using MLNet.Align.Projection;
using Onnx;
using MLNet.Align.Prompts;

namespace MLNet.Align.ZeroShot;

/// <summary>
/// The zero-shot classification head: scores = softmax(logit_scale * image_aligned @ classes^T), predicted label =
/// class name at the argmax (docs/method.md section 4.1: score = image feature . class vector, prediction = argmax; the
/// softmax with CLIP's logit scale turns the cosine scores into probabilities and does not change the argmax).
/// Exported as a small ONNX graph (opset 20 + ai.onnx.ml 2):
/// <list type="bullet">
/// <item>input <c>image_aligned</c> float [batch, E] (L2-normalised, from the image projector graph);</item>
/// <item>output <see cref="ZeroShotHeadNames.Score"/> (default "Score") float [batch, C], rows sum to 1, class order
/// = <see cref="ClassEmbeddings.ClassNames"/>;</item>
/// <item>output <see cref="ZeroShotHeadNames.PredictedClass"/> (default "PredictedClass") string [batch]: the class
/// name with the highest score (first one on ties, as ONNX ArgMax).</item>
/// </list>
/// The class names also travel as ML.NET slot names of the score column: ML.NET's OnnxTransformer (5.0.1) looks for a
/// node named <c>mlnet.&lt;score column&gt;.SlotNames</c> with a <c>keys_strings</c> attribute and exposes those
/// strings as the column's SlotNames annotation. That node is an ai.onnx.ml LabelEncoder over the class-name constant
/// (valid, unused by the outputs, so ONNX Runtime prunes it).
/// </summary>
public static class ZeroShotHead
{
    /// <summary>Format tag written in the graph's metadata_props under "mlnet_align.format".</summary>
    public const string FormatTag = "mlnet-align/zero-shot-head/1";

    /// <summary>Builds the head graph as ONNX bytes.</summary>
    /// <param name="classes">Class names and [C, E] matrix.</param>
    /// <param name="logitScale">Multiplier of the cosine scores before the softmax (projector's 1/temperature; 100 for
    /// CLIP-style baselines). Must be finite and positive.</param>
    /// <param name="scoreColumnName">Name of the score output (and of the ML.NET column).</param>
    /// <param name="predictedLabelColumnName">Name of the string output holding the predicted class name.</param>
    /// <exception cref="ArgumentException">Non-positive logit scale; equal output names; no class.</exception>
    public static byte[] ExportOnnx(ClassEmbeddings classes, float logitScale,
        string scoreColumnName = ZeroShotHeadNames.Score, string predictedLabelColumnName = ZeroShotHeadNames.PredictedClass)
    {
        ArgumentNullException.ThrowIfNull(classes);
        if (!(logitScale > 0) || float.IsInfinity(logitScale)) throw new ArgumentException($"logitScale must be finite and positive, got {logitScale}.", nameof(logitScale));
        if (scoreColumnName == predictedLabelColumnName) throw new ArgumentException($"Score and predicted-label outputs need different names, both are '{scoreColumnName}'.");
        ClassList.Validate(classes.ClassNames);
        int c = classes.Count, e = classes.Dimension;

        var g = new OnnxGraphBuilder("zero_shot_head");
        g.UseOpset("ai.onnx.ml", 2);
        var x = g.Input(ProjectorOnnxNames.ImageAligned, "batch", e);
        var wt = new float[e * c];
        for (int k = 0; k < c; k++)
        {
            var row = classes.Matrix.Row(k);
            for (int j = 0; j < e; j++) wt[j * c + k] = row[j];
        }
        var w = g.Constant("class_embeddings_t", wt, e, c);
        var cos = g.Op("MatMul", x, w);
        var scale = g.Constant("logit_scale", new[] { logitScale }, 1);
        var logits = g.Node("Mul", new[] { cos, scale }, outputs: new[] { "logits" })[0];
        g.Node("Softmax", new[] { logits }, outputs: new[] { scoreColumnName }, attributes: new Dictionary<string, object> { ["axis"] = -1L });
        var idx = g.Op("ArgMax", new[] { logits }, new Dictionary<string, object> { ["axis"] = -1L, ["keepdims"] = 0L });
        var names = g.ConstantStrings("class_names", classes.ClassNames);
        g.Node("Gather", new[] { names, idx }, outputs: new[] { predictedLabelColumnName }, attributes: new Dictionary<string, object> { ["axis"] = 0L });
        g.Output(scoreColumnName, "batch", c);
        g.Output(predictedLabelColumnName, TensorProto.Types.DataType.String, "batch");

        var model = g.Build(docString: "MLNet.Align zero-shot head: softmax(logit_scale * image_aligned @ classes^T) and argmax label.");
        // ML.NET slot-name convention: node name mlnet.<column>.SlotNames, attribute keys_strings.
        var slot = new NodeProto { OpType = "LabelEncoder", Domain = "ai.onnx.ml", Name = $"mlnet.{scoreColumnName}.SlotNames" };
        slot.Input.Add(names);
        slot.Output.Add($"{scoreColumnName}_slot_index");
        var keys = new AttributeProto { Name = "keys_strings", Type = AttributeProto.Types.AttributeType.Strings };
        foreach (var n in classes.ClassNames) keys.Strings.Add(Google.Protobuf.ByteString.CopyFromUtf8(n));
        var values = new AttributeProto { Name = "values_int64s", Type = AttributeProto.Types.AttributeType.Ints };
        values.Ints.AddRange(Enumerable.Range(0, c).Select(i => (long)i));
        var dflt = new AttributeProto { Name = "default_int64", Type = AttributeProto.Types.AttributeType.Int, I = -1 };
        slot.Attribute.Add(keys); slot.Attribute.Add(values); slot.Attribute.Add(dflt);
        model.Graph.Node.Add(slot);

        OnnxGraphBuilder.AddMetadata(model, "mlnet_align.format", FormatTag);
        OnnxGraphBuilder.AddMetadata(model, "mlnet_align.classes", JsonSerializer.Serialize(classes.ClassNames));
        OnnxGraphBuilder.AddMetadata(model, "mlnet_align.logit_scale", logitScale.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
        OnnxGraphBuilder.AddMetadata(model, "mlnet_align.renormalized", classes.Renormalized ? "true" : "false");
        return Google.Protobuf.MessageExtensions.ToByteArray(model);
    }

    /// <summary>Managed reference of the head: scores [n, C] (softmax of scaled cosines) and argmax indices.</summary>
    /// <param name="imageAligned">[n, E] aligned image embeddings.</param>
    /// <param name="classes">Class embedding matrix [C, E] with names.</param>
    /// <param name="logitScale">Multiplier of the cosines before the softmax (1 / temperature).</param>
    /// <exception cref="ArgumentException">Width differs from the class matrix.</exception>
    public static (EmbeddingMatrix Scores, int[] Predicted) Score(EmbeddingMatrix imageAligned, ClassEmbeddings classes, float logitScale)
    {
        if (imageAligned.Columns != classes.Dimension)
            throw new ArgumentException($"Image embeddings have width {imageAligned.Columns}, class embeddings {classes.Dimension}.");
        int c = classes.Count;
        var scores = new float[imageAligned.Rows * c];
        var pred = new int[imageAligned.Rows];
        for (int i = 0; i < imageAligned.Rows; i++)
        {
            var row = scores.AsSpan(i * c, c);
            for (int k = 0; k < c; k++) row[k] = logitScale * TensorPrimitives.Dot(imageAligned.Row(i), classes.Matrix.Row(k));
            pred[i] = TensorPrimitives.IndexOfMax(row);
            // Subtract the max first: exp(100) overflows float32.
            TensorPrimitives.Subtract(row, row[pred[i]], row);
            TensorPrimitives.Exp(row, row);
            TensorPrimitives.Divide(row, TensorPrimitives.Sum(row), row);
        }
        return (new EmbeddingMatrix(scores, imageAligned.Rows, c), pred);
    }
}

/// <summary>Default names of the zero-shot head's outputs / ML.NET columns (ML.NET's multiclass conventions).</summary>
public static class ZeroShotHeadNames
{
    /// <summary>float [C] per image, class names as slot names.</summary>
    public const string Score = "Score";
    /// <summary>Key-typed predicted label (key values = class names, in class order), as ML.NET's multiclass trainers
    /// produce: <c>mlContext.MulticlassClassification.Evaluate</c> reads it beside <see cref="Score"/>.</summary>
    public const string PredictedLabel = "PredictedLabel";
    /// <summary>Text, the predicted class name (the head graph's string output, kept for convenience).</summary>
    public const string PredictedClass = "PredictedClass";
}
