using MLNet.Align.Encoders;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Align.Projection;

/// <summary>Freezing one side of the network and seeding weights from another model (<see cref="AlignmentTrainer.InitFrom"/>).</summary>
internal static class WeightTransfer
{
    private static string[] SidePrefixes(ProjectorSide side) => side switch
    {
        ProjectorSide.Image => ["image_local.", "image_global."],
        ProjectorSide.Text => ["text_local.", "text_global."],
        _ => [],
    };

    /// <summary>Switches off gradients of the frozen side; returns its modules (kept in eval mode during training).</summary>
    public static IReadOnlyList<nn.Module> FreezeSide(AlignmentNetwork net, ProjectorSide side)
    {
        var prefixes = SidePrefixes(side);
        foreach (var (name, prm) in net.named_parameters())
            if (prefixes.Any(name.StartsWith)) prm.requires_grad = false;
        var modules = side switch
        {
            ProjectorSide.Image => new nn.Module?[] { net.ImageLocal, net.ImageGlobal },
            ProjectorSide.Text => new nn.Module?[] { net.TextLocal, net.TextGlobal },
            _ => [],
        };
        return modules.Where(m => m is not null).Select(m => m!).ToArray();
    }

    /// <summary>Copies parameters from <paramref name="source"/> into <paramref name="target"/>: the pieces of
    /// <paramref name="side"/> (all of them must match), or with <see cref="ProjectorSide.None"/> every piece that matches.
    /// Returns a description of what was copied. <paramref name="imageEncoder"/> and <paramref name="textEncoder"/> are the
    /// encoders the training data was made with, when known.</summary>
    /// <exception cref="ArgumentException">A piece of the requested side has another architecture or input width, or its
    /// encoder identity differs from the data's.</exception>
    public static string CopyWeights(AlignedModel source, AlignedModel target, ProjectorSide side, EncoderIdentity? imageEncoder, EncoderIdentity? textEncoder)
    {
        var sp = source.Projector; var tp = target.Projector;
        if (sp.EmbeddingDimension != tp.EmbeddingDimension)
            throw new ArgumentException($"InitFrom model '{source.Name}' has embedding width {sp.EmbeddingDimension}, the new model {tp.EmbeddingDimension}.");
        bool ImageMatches() => sp.ImageLocal == tp.ImageLocal && sp.ImageGlobal == tp.ImageGlobal && source.ImageDimension == target.ImageDimension && source.ImageTokenDimension == target.ImageTokenDimension;
        bool TextMatches() => sp.TextLocal == tp.TextLocal && sp.TextGlobal == tp.TextGlobal && source.TextDimension == target.TextDimension && source.TextTokenDimension == target.TextTokenDimension;
        if (side == ProjectorSide.Image)
        {
            if (!ImageMatches())
                throw new ArgumentException($"Cannot freeze the image side from '{source.Name}': it has image pieces {sp.ImageLocal}/{sp.ImageGlobal} on {source.ImageDimension}-d (tokens {source.ImageTokenDimension?.ToString() ?? "-"}), the new model {tp.ImageLocal}/{tp.ImageGlobal} on {target.ImageDimension}-d (tokens {target.ImageTokenDimension?.ToString() ?? "-"}).");
            if (source.ImageEncoder is { } a && imageEncoder is { } b && a.Sha256 != b.Sha256)
                throw new ArgumentException($"Cannot freeze the image side from '{source.Name}': it was trained on image encoder '{a.Name}' ({a.Sha256[..12]}), the data comes from '{b.Name}' ({b.Sha256[..12]}).");
        }
        if (side == ProjectorSide.Text)
        {
            if (!TextMatches())
                throw new ArgumentException($"Cannot freeze the text side from '{source.Name}': it has text pieces {sp.TextLocal}/{sp.TextGlobal} on {source.TextDimension}-d, the new model {tp.TextLocal}/{tp.TextGlobal} on {target.TextDimension}-d.");
            if (source.TextEncoder is { } a && textEncoder is { } b && a.Sha256 != b.Sha256)
                throw new ArgumentException($"Cannot freeze the text side from '{source.Name}': it was trained on text encoder '{a.Name}' ({a.Sha256[..12]}), the data comes from '{b.Name}' ({b.Sha256[..12]}).");
        }
        var prefixes = side switch
        {
            ProjectorSide.None => (ImageMatches() ? SidePrefixes(ProjectorSide.Image) : []).Concat(TextMatches() ? SidePrefixes(ProjectorSide.Text) : []).ToArray(),
            _ => SidePrefixes(side),
        };
        var from = source.Network.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        int n = 0; long values = 0;
        using (no_grad())
            foreach (var (name, prm) in target.Network.named_parameters())
            {
                if (!prefixes.Any(name.StartsWith) || !from.TryGetValue(name, out var src)) continue;
                prm.copy_(src);
                n++; values += prm.numel();
            }
        return n == 0 ? "nothing (no matching piece)" : $"{n} tensors ({values:N0} weights) of {(side == ProjectorSide.None ? "the matching pieces" : $"the {side} side")}";
    }
}
