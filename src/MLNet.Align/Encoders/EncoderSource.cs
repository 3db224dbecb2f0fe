using System.Security.Cryptography;
using System.Text.Json.Serialization;

namespace MLNet.Align.Encoders;

/// <summary>
/// Everything needed to reopen a frozen encoder later from a record alone (embedding-store manifest, aligned-model
/// bundle alignment.json): the complete <see cref="OnnxImageEncoderOptions"/> or <see cref="OnnxTextEncoderOptions"/>
/// with absolute file paths, the SHA-256 of every file they name, and the resulting <see cref="EncoderIdentity"/>.
/// Packaged encoders (ResNet-18, all-MiniLM-L6-v2, snowflake-arctic-embed-xs) are recorded by name and reopened from their packages.
/// </summary>
public sealed record EncoderSource
{
    /// <summary>"resnet18" or "all-MiniLM-L6-v2" for a packaged encoder; null for a user's ONNX model.</summary>
    public string? Packaged { get; init; }
    /// <summary>Options of a user's ONNX image encoder (absolute paths; bytes never recorded).</summary>
    public OnnxImageEncoderOptions? Image { get; init; }
    /// <summary>Options of a user's ONNX text encoder (absolute paths; bytes never recorded).</summary>
    public OnnxTextEncoderOptions? Text { get; init; }
    /// <summary>Absolute path -> lower-case hex SHA-256 of each file the options name (model, preprocessing model,
    /// vocabulary, merges), checked when reopening.</summary>
    public Dictionary<string, string> Files { get; init; } = new();
    /// <summary>The identity the encoder had when recorded; the reopened encoder must have the same.</summary>
    public EncoderIdentity Identity { get; init; } = null!;

    /// <summary>The record of <paramref name="encoder"/>, or null when it cannot be reopened from a record (an
    /// encoder built from bytes only, or another <see cref="IImageEncoder"/> implementation).</summary>
    public static EncoderSource? Of(IImageEncoder encoder)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        if (encoder is not OnnxImageEncoder onnx) return null;
        var o = onnx.Options;
        if (o.Name == "resnet18" && IsPackagedResNet(o)) return new EncoderSource { Packaged = "resnet18", Identity = encoder.Identity };
        if (o.ModelBytes is not null || o.PreprocessingModelBytes is not null || o.ModelPath is null) return null;
        var copy = CopyOf(o);
        copy.ModelPath = Path.GetFullPath(o.ModelPath);
        if (o.PreprocessingModelPath is not null) copy.PreprocessingModelPath = Path.GetFullPath(o.PreprocessingModelPath);
        return new EncoderSource { Image = copy, Files = Hashes(copy.ModelPath, copy.PreprocessingModelPath), Identity = encoder.Identity };
    }

    /// <summary>The record of <paramref name="encoder"/>, or null when it cannot be reopened from a record.</summary>
    public static EncoderSource? Of(ITextEncoder encoder)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        if (encoder is not OnnxTextEncoder onnx) return null;
        var o = onnx.Options;
        if ((o.Name == PackagedEncoders.MiniLMName || o.Name == PackagedEncoders.ArcticXsName) && o.ModelPath is null && o.ModelBytes is not null)
            return new EncoderSource { Packaged = o.Name, Identity = encoder.Identity };
        if (o.ModelBytes is not null || o.VocabBytes is not null || o.MergesBytes is not null || o.ModelPath is null || o.VocabPath is null) return null;
        var copy = CopyOf(o);
        copy.ModelPath = Path.GetFullPath(o.ModelPath);
        copy.VocabPath = Path.GetFullPath(o.VocabPath);
        if (o.MergesPath is not null) copy.MergesPath = Path.GetFullPath(o.MergesPath);
        return new EncoderSource { Text = copy, Files = Hashes(copy.ModelPath, copy.VocabPath, copy.MergesPath), Identity = encoder.Identity };
    }

    /// <summary>Reopens the recorded image encoder.</summary>
    /// <param name="where">Where the record came from, for messages (e.g. the bundle's alignment.json path).</param>
    /// <exception cref="FileNotFoundException">A recorded file is no longer at its path (moved or deleted).</exception>
    /// <exception cref="InvalidDataException">A recorded file changed (SHA-256 differs), or the reopened encoder's
    /// identity differs from the recorded one.</exception>
    /// <exception cref="InvalidOperationException">The record holds no image encoder.</exception>
    public IImageEncoder OpenImage(string where = "the record")
    {
        if (Packaged is not null) return PackagedEncoders.OpenImageEncoder(Identity);
        if (Image is null) throw new InvalidOperationException($"{where} records no image encoder options.");
        CheckFiles("image", where);
        var encoder = new OnnxImageEncoder(CopyOf(Image));
        return CheckIdentity(encoder, encoder.Identity, "image", where);
    }

    /// <summary>Reopens the recorded text encoder.</summary>
    /// <inheritdoc cref="OpenImage" path="/param"/>
    /// <exception cref="FileNotFoundException">A recorded file is no longer at its path (moved or deleted).</exception>
    /// <exception cref="InvalidDataException">A recorded file changed, or the identity differs.</exception>
    /// <exception cref="InvalidOperationException">The record holds no text encoder.</exception>
    public ITextEncoder OpenText(string where = "the record")
    {
        if (Packaged is not null) return PackagedEncoders.OpenTextEncoder(Identity);
        if (Text is null) throw new InvalidOperationException($"{where} records no text encoder options.");
        CheckFiles("text", where);
        var encoder = new OnnxTextEncoder(CopyOf(Text));
        return CheckIdentity(encoder, encoder.Identity, "text", where);
    }

    private void CheckFiles(string side, string where)
    {
        foreach (var (path, sha) in Files)
        {
            if (!File.Exists(path))
                throw new FileNotFoundException($"The {side} encoder file '{path}' recorded in {where} does not exist (moved or deleted?): put it back at that path or re-run embed/train with its new location.", path);
            var actual = Sha256Of(path);
            if (actual != sha)
                throw new InvalidDataException($"The {side} encoder file '{path}' recorded in {where} has changed: SHA-256 {actual}, recorded {sha}. Features from it would not match the trained projector.");
        }
    }

    private T CheckIdentity<T>(T encoder, EncoderIdentity actual, string side, string where) where T : IDisposable
    {
        if (actual.Sha256 == Identity.Sha256) return encoder;
        encoder.Dispose();
        throw new InvalidDataException($"The {side} encoder reopened from {where} has identity {actual.Sha256[..12]}..., recorded {Identity.Sha256[..12]}... (options or library behaviour changed).");
    }

    private static bool IsPackagedResNet(OnnxImageEncoderOptions o)
    {
        var packaged = PackagedEncoders.ResNet18Options();
        return o.ModelPath is not null && o.PreprocessingModelPath is not null
            && Path.GetFullPath(o.ModelPath) == Path.GetFullPath(packaged.ModelPath!)
            && Path.GetFullPath(o.PreprocessingModelPath) == Path.GetFullPath(packaged.PreprocessingModelPath!);
    }

    private static Dictionary<string, string> Hashes(params string?[] paths)
        => paths.Where(p => p is not null).Distinct().ToDictionary(p => p!, p => Sha256Of(p!));

    internal static string Sha256Of(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private static T CopyOf<T>(T options)
        => System.Text.Json.JsonSerializer.Deserialize<T>(System.Text.Json.JsonSerializer.Serialize(options, JsonOptions), JsonOptions)!;

    internal static readonly System.Text.Json.JsonSerializerOptions JsonOptions = new()
    {
        Converters = { new JsonStringEnumConverter() },
    };
}
