using MLNet.Align.Encoders;

namespace MLNet.Align.Similarity;

/// <summary>
/// Stage 1's candidates among the packaged encoders, opened by name: image candidates <c>resnet18</c> (pooled) and
/// <c>resnet18.layer2</c> .. <c>resnet18.layer4</c> (one forward pass taps every named layer), text candidates
/// <c>minilm</c> (all-MiniLM-L6-v2) and <c>arctic-xs</c> (snowflake-arctic-embed-xs). <c>select</c> and the demo rank the
/// same candidates through this class. Holds native memory: dispose it.
/// </summary>
public sealed class PackagedCandidates : IDisposable
{
    /// <summary>Default image candidates: the packaged ResNet-18's last three stages.</summary>
    public const string DefaultImageCandidates = "resnet18.layer2,resnet18.layer3,resnet18.layer4";
    /// <summary>Default text candidates: the two packaged sentence encoders.</summary>
    public const string DefaultTextCandidates = "minilm,arctic-xs";

    private readonly List<IDisposable> _owned = [];

    private PackagedCandidates() { }

    /// <summary>The layer taps of the named ResNet-18 stages, or null when none was named.</summary>
    public ImageLayerCandidates? Layers { get; private set; }
    /// <summary>Whole-encoder image candidates (the pooled ResNet-18 when named).</summary>
    public IReadOnlyList<ImageEncoderCandidate> Images { get; private set; } = [];
    /// <summary>Text candidates, in the order named.</summary>
    public IReadOnlyList<TextEncoderCandidate> Texts { get; private set; } = [];

    /// <summary>Opens the candidates named in two comma-separated lists (<see cref="DefaultImageCandidates"/>,
    /// <see cref="DefaultTextCandidates"/>).</summary>
    /// <param name="imageList">Comma-separated image candidates.</param>
    /// <param name="textList">Comma-separated text candidates.</param>
    /// <param name="imageOption">Name of the option the image list came from, for messages.</param>
    /// <param name="textOption">Name of the option the text list came from, for messages.</param>
    /// <exception cref="ArgumentException">An empty list or an unknown name (the message lists the known ones).</exception>
    public static PackagedCandidates Open(string imageList, string textList, string imageOption = "--image-encoders", string textOption = "--text-encoders")
    {
        var imageNames = Split(imageList, imageOption);
        var textNames = Split(textList, textOption);
        var layers = new List<ImageLayer>();
        bool pooledResNet = false;
        foreach (var name in imageNames)
        {
            var layer = ImageLayerCandidates.ResNet18Stages.FirstOrDefault(l => l.Name.Equals(name, StringComparison.OrdinalIgnoreCase));
            if (layer is not null) layers.Add(layer);
            else if (name.Equals("resnet18", StringComparison.OrdinalIgnoreCase)) pooledResNet = true;
            else throw new ArgumentException($"{imageOption}: unknown candidate '{name}'; known: resnet18, {string.Join(", ", ImageLayerCandidates.ResNet18Stages.Select(l => l.Name))}.");
        }
        foreach (var name in textNames)
            if (TextOpener(name) is null) throw new ArgumentException($"{textOption}: unknown candidate '{name}'; known: minilm, arctic-xs.");
        var c = new PackagedCandidates { ImageNames = imageNames };
        try
        {
            if (layers.Count > 0) c._owned.Add(c.Layers = ImageLayerCandidates.ResNet18(1, layers));
            if (pooledResNet)
            {
                var resnet = PackagedEncoders.ResNet18(1);
                c._owned.Add(resnet);
                c.Images = [new ImageEncoderCandidate("resnet18", resnet)];
            }
            var texts = new List<TextEncoderCandidate>();
            foreach (var name in textNames)
            {
                var enc = TextOpener(name)!();
                c._owned.Add(enc);
                texts.Add(new TextEncoderCandidate(enc.Identity.Name, enc));
            }
            c.Texts = texts;
            return c;
        }
        catch
        {
            c.Dispose();
            throw;
        }
    }

    /// <summary>The image candidate names as given.</summary>
    public IReadOnlyList<string> ImageNames { get; private init; } = [];

    private static Func<ITextEncoder>? TextOpener(string name) => name.ToLowerInvariant() switch
    {
        "minilm" or "all-minilm-l6-v2" => () => PackagedEncoders.MiniLM(),
        "arctic-xs" or "arcticxs" or "snowflake-arctic-embed-xs" => () => PackagedEncoders.ArcticXs(),
        _ => null,
    };

    private static string[] Split(string list, string option)
    {
        var v = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return v.Length > 0 ? v : throw new ArgumentException($"{option}: give at least one candidate.");
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var d in _owned) d.Dispose();
        _owned.Clear();
    }
}
