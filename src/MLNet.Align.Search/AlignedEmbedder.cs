using MLNet.Align.Encoders;
using MLNet.Align.Projection;

namespace MLNet.Align.Search;

/// <summary>Texts and images into the aligned space of one model: its frozen encoders (the image encoder opened at once,
/// the text encoder on first use) followed by its projectors. Calls are serialised (one query at a time per instance).</summary>
internal sealed class AlignedEmbedder : IDisposable
{
    private readonly object _lock = new();
    private ITextEncoder? _text;

    public AlignedEmbedder(AlignedModel model, bool ownsModel)
    {
        Model = model;
        OwnsModel = ownsModel;
        if (model.UsesImageTokens)
            throw new NotSupportedException($"The model '{model.Name}' has a per-token image projector; search stores pooled encoder embeddings, so it needs a pooled image side (e.g. a recipe other than 'paper').");
        Image = model.OpenImageEncoder();
    }

    public AlignedModel Model { get; }
    public bool OwnsModel { get; }
    public IImageEncoder Image { get; }

    /// <summary>Aligned text embeddings [texts.Count][E] (unit length as the projector gives them).</summary>
    public float[][] Texts(IReadOnlyList<string> texts)
    {
        for (int i = 0; i < texts.Count; i++)
            if (string.IsNullOrWhiteSpace(texts[i])) throw new ArgumentException($"Text {i} is empty; a text query needs words.");
        lock (_lock)
        {
            _text ??= Model.OpenTextEncoder();
            var enc = _text.EncodeBatch(texts, Model.UsesTextTokens);
            var projected = Model.ProjectTexts(enc.Pooled, enc.Tokens);
            FiniteCheck.Require(projected, $"the aligned text embeddings of model '{Model.Name}'");
            return Enumerable.Range(0, texts.Count).Select(i => projected.Row(i).ToArray()).ToArray();
        }
    }

    /// <summary>Aligned image embeddings [paths.Count][E].</summary>
    /// <exception cref="FileNotFoundException">A file does not exist.</exception>
    /// <exception cref="InvalidDataException">A file is not a readable image (the message names it).</exception>
    public float[][] ImageFiles(IReadOnlyList<string> paths)
    {
        foreach (var p in paths) InputFiles.RequireRegularFile(p, "query image");
        lock (_lock)
        {
            var enc = Image.EncodeBatch(paths);
            var projected = Model.ProjectImages(enc.Pooled);
            FiniteCheck.Require(projected, $"the aligned image embeddings of model '{Model.Name}'");
            return Enumerable.Range(0, paths.Count).Select(i => projected.Row(i).ToArray()).ToArray();
        }
    }

    /// <summary>Aligned embedding of an encoded image held in memory (an upload).</summary>
    /// <exception cref="InvalidDataException">The bytes are not a readable image.</exception>
    public float[] ImageBytes(byte[] bytes)
    {
        // The encoder decodes files (orientation, alpha, pixel budget): the bytes go through a private temporary file.
        string tmp = Path.Combine(Path.GetTempPath(), $"mlnet-align-query-{Guid.NewGuid():N}");
        try
        {
            File.WriteAllBytes(tmp, bytes);
            try { return ImageFiles([tmp])[0]; }
            catch (InvalidDataException e) { throw new InvalidDataException($"The uploaded image ({bytes.Length:N0} bytes) cannot be decoded: {e.Message.Replace(tmp, "upload")}", e); }
        }
        finally { File.Delete(tmp); }
    }

    public void Dispose()
    {
        _text?.Dispose();
        Image.Dispose();
        if (OwnsModel) Model.Dispose();
    }
}
