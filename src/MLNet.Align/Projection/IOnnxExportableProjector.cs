namespace MLNet.Align.Projection;

/// <summary>How image token features are laid out at the input of an exported image projector.</summary>
public enum ImageTokenLayout
{
    /// <summary>[batch, tokens, dim] (ViT patch tokens, and the embedding store's layout).</summary>
    TokensByDim,
    /// <summary>[batch, dim, height, width], a CNN feature map (e.g. ResNet18's ReLU393_Output_0 [1,512,7,7]);
    /// flattened to height*width tokens inside the graph.</summary>
    Nchw,
}

/// <summary>
/// A projector that can be written as ONNX graphs, so that it runs under ONNX Runtime and ML.NET's ApplyOnnxModel
/// (the route to a savable ML.NET zip, docs/design.md). Names are fixed so that pipelines can be wired without guessing:
/// <list type="bullet">
/// <item>image graph: input <c>image_embedding</c> float [batch, image dim]; with tokens also <c>image_tokens</c>
/// (layout per <see cref="ImageTokenLayout"/>); output <c>image_aligned</c> float [batch, E], L2-normalised.</item>
/// <item>text graph: input <c>text_embedding</c> float [batch, text dim]; with tokens also <c>text_tokens</c> float
/// [batch, tokens, dim] and <c>text_mask</c> float [batch, tokens] (1 = real token); output <c>text_aligned</c>
/// float [batch, E], L2-normalised.</item>
/// </list>
/// The batch dimension is symbolic. Exported outputs equal <see cref="IAlignedProjector.ProjectImages"/> /
/// <see cref="IAlignedProjector.ProjectTexts"/> to max abs diff 1e-5.
/// </summary>
public interface IOnnxExportableProjector : IAlignedProjector
{
    /// <summary>The image-side graph as ONNX bytes (opset 20).</summary>
    byte[] ExportImageProjectorOnnx(ImageTokenLayout tokenLayout = ImageTokenLayout.TokensByDim);

    /// <summary>The text-side graph as ONNX bytes (opset 20).</summary>
    byte[] ExportTextProjectorOnnx();
}

/// <summary>Fixed tensor names of exported projector graphs (see <see cref="IOnnxExportableProjector"/>).</summary>
public static class ProjectorOnnxNames
{
    public const string ImageEmbedding = "image_embedding";
    public const string ImageTokens = "image_tokens";
    public const string ImageAligned = "image_aligned";
    public const string TextEmbedding = "text_embedding";
    public const string TextTokens = "text_tokens";
    public const string TextMask = "text_mask";
    public const string TextAligned = "text_aligned";
}
