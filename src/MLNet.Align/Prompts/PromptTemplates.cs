using System.Collections;

namespace MLNet.Align.Prompts;

/// <summary>
/// An ordered, validated list of prompt templates for zero-shot classification. Each template contains the class
/// placeholder <c>{}</c> (every occurrence is replaced by the class name), as in open_clip's
/// <c>zero_shot_metadata.py</c> (there written as Python lambdas). Built-in sets: <see cref="OpenAiImageNet"/> (the 80
/// CLIP ImageNet templates), <see cref="SimpleImageNet"/> (the 7-template subset CLIP's notebook selected),
/// <see cref="Photo"/> (the single "a photo of a {}."), <see cref="IconsAndClipArt"/> (for emoji, icons, clip art).
/// Files hold one template per line; blank lines and lines starting with <c>#</c> are skipped.
/// </summary>
public sealed class PromptTemplates : IReadOnlyList<string>
{
    /// <summary>The class placeholder.</summary>
    public const string Placeholder = "{}";

    private readonly string[] _templates;

    /// <summary>Creates a set from templates; each must contain <c>{}</c> and no other brace.</summary>
    /// <param name="name">Short name for reports ("openai-imagenet", a file name...).</param>
    /// <param name="templates">The templates, at least one.</param>
    /// <exception cref="ArgumentException">No template, or a template lacks <c>{}</c> or has another brace (the
    /// message gives its index and text).</exception>
    public PromptTemplates(string name, IEnumerable<string> templates)
    {
        ArgumentNullException.ThrowIfNull(templates);
        Name = name;
        _templates = templates.ToArray();
        if (_templates.Length == 0) throw new ArgumentException($"Prompt template set '{name}' is empty: give at least one template containing {Placeholder}.", nameof(templates));
        for (int i = 0; i < _templates.Length; i++) Validate(_templates[i], $"template {i} of '{name}'");
    }

    /// <summary>Short name of the set.</summary>
    public string Name { get; }

    /// <inheritdoc/>
    public int Count => _templates.Length;

    /// <inheritdoc/>
    public string this[int index] => _templates[index];

    /// <summary>Fills template <paramref name="index"/> with <paramref name="className"/>.</summary>
    public string Format(int index, string className) => _templates[index].Replace(Placeholder, className, StringComparison.Ordinal);

    /// <summary>All templates filled with <paramref name="className"/>, in order.</summary>
    public IReadOnlyList<string> Apply(string className) => _templates.Select(t => t.Replace(Placeholder, className, StringComparison.Ordinal)).ToArray();

    /// <inheritdoc/>
    public IEnumerator<string> GetEnumerator() => ((IEnumerable<string>)_templates).GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => _templates.GetEnumerator();

    /// <summary>Parses templates from lines (one per line; blank lines and <c>#</c> comments skipped).</summary>
    /// <exception cref="ArgumentException">A line lacks <c>{}</c> (the message gives the 1-based line number and
    /// <paramref name="source"/>) or no template is left.</exception>
    public static PromptTemplates FromLines(IEnumerable<string> lines, string source = "templates")
    {
        var list = new List<string>();
        int lineNo = 0;
        foreach (var raw in lines)
        {
            lineNo++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            Validate(line, $"{source}, line {lineNo}");
            list.Add(line);
        }
        if (list.Count == 0) throw new ArgumentException($"{source}: no prompt template found (one per line, each containing {Placeholder}).");
        return new PromptTemplates(source, list);
    }

    /// <summary>Loads templates from a UTF-8 text file (see <see cref="FromLines"/>).</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="ArgumentException">A line lacks <c>{}</c>, or the file has no template.</exception>
    public static PromptTemplates Load(string path)
    {
        InputFiles.RequireRegularFile(path, "Prompt template file");
        return FromLines(File.ReadLines(path), path);
    }

    /// <summary>Writes one template per line.</summary>
    public void Save(string path) => AtomicFile.WriteAllText(path, string.Join('\n', _templates) + "\n");

    /// <summary>A built-in set by name: "openai-imagenet" (80), "simple-imagenet" (7), "photo" (1), "icons" (8).</summary>
    /// <exception cref="ArgumentException">Unknown name (the message lists the known ones).</exception>
    public static PromptTemplates BuiltIn(string name) => name.ToLowerInvariant() switch
    {
        "openai-imagenet" or "openai" or "imagenet" => OpenAiImageNet,
        "simple-imagenet" or "simple" => SimpleImageNet,
        "photo" => Photo,
        "icons" or "clipart" or "icons-clipart" => IconsAndClipArt,
        _ => throw new ArgumentException($"Unknown built-in template set '{name}'; known: openai-imagenet, simple-imagenet, photo, icons.", nameof(name)),
    };

    /// <summary>Loads <paramref name="nameOrPath"/> as a file when it exists, else as a built-in set name.</summary>
    public static PromptTemplates LoadOrBuiltIn(string nameOrPath) => File.Exists(nameOrPath) ? Load(nameOrPath) : BuiltIn(nameOrPath);

    private static void Validate(string template, string where)
    {
        if (template is null) throw new ArgumentException($"{where}: template is null.");
        if (!template.Contains(Placeholder, StringComparison.Ordinal))
            throw new ArgumentException($"{where}: template '{template}' lacks the class placeholder {Placeholder}.");
        if (template.Replace(Placeholder, "", StringComparison.Ordinal).IndexOfAny(['{', '}']) >= 0)
            throw new ArgumentException($"{where}: template '{template}' has a brace other than the placeholder {Placeholder} (write '{{c}}'/'{{0}}' as {Placeholder}).");
    }

    /// <summary>The single template "a photo of a {}." (CLIP's default prompt).</summary>
    public static PromptTemplates Photo { get; } = new("photo", ["a photo of a {}."]);

    /// <summary>Templates for emoji, icons and clip art (this project's fixtures); not from a paper.</summary>
    public static PromptTemplates IconsAndClipArt { get; } = new("icons",
    [
        "an icon of a {}.", "a clip art of a {}.", "an emoji of a {}.", "a cartoon drawing of a {}.",
        "a flat illustration of a {}.", "a vector drawing of a {}.", "a simple drawing of a {}.", "a sticker of a {}.",
    ]);

    /// <summary>The 7 templates CLIP's ImageNet notebook selected (open_clip SIMPLE_IMAGENET_TEMPLATES).</summary>
    public static PromptTemplates SimpleImageNet { get; } = new("simple-imagenet",
    [
        "itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
        "a {} in a video game.", "art of the {}.", "a photo of the small {}.",
    ]);

    /// <summary>The 80 CLIP ImageNet prompt templates (open_clip OPENAI_IMAGENET_TEMPLATES), in their order.</summary>
    public static PromptTemplates OpenAiImageNet { get; } = new("openai-imagenet",
    [
        "a bad photo of a {}.", "a photo of many {}.", "a sculpture of a {}.", "a photo of the hard to see {}.",
        "a low resolution photo of the {}.", "a rendering of a {}.", "graffiti of a {}.", "a bad photo of the {}.",
        "a cropped photo of the {}.", "a tattoo of a {}.", "the embroidered {}.", "a photo of a hard to see {}.",
        "a bright photo of a {}.", "a photo of a clean {}.", "a photo of a dirty {}.", "a dark photo of the {}.",
        "a drawing of a {}.", "a photo of my {}.", "the plastic {}.", "a photo of the cool {}.",
        "a close-up photo of a {}.", "a black and white photo of the {}.", "a painting of the {}.", "a painting of a {}.",
        "a pixelated photo of the {}.", "a sculpture of the {}.", "a bright photo of the {}.", "a cropped photo of a {}.",
        "a plastic {}.", "a photo of the dirty {}.", "a jpeg corrupted photo of a {}.", "a blurry photo of the {}.",
        "a photo of the {}.", "a good photo of the {}.", "a rendering of the {}.", "a {} in a video game.",
        "a photo of one {}.", "a doodle of a {}.", "a close-up photo of the {}.", "a photo of a {}.",
        "the origami {}.", "the {} in a video game.", "a sketch of a {}.", "a doodle of the {}.",
        "a origami {}.", "a low resolution photo of a {}.", "the toy {}.", "a rendition of the {}.",
        "a photo of the clean {}.", "a photo of a large {}.", "a rendition of a {}.", "a photo of a nice {}.",
        "a photo of a weird {}.", "a blurry photo of a {}.", "a cartoon {}.", "art of a {}.",
        "a sketch of the {}.", "a embroidered {}.", "a pixelated photo of a {}.", "itap of the {}.",
        "a jpeg corrupted photo of the {}.", "a good photo of a {}.", "a plushie {}.", "a photo of the nice {}.",
        "a photo of the small {}.", "a photo of the weird {}.", "the cartoon {}.", "art of the {}.",
        "a drawing of the {}.", "a photo of the large {}.", "a black and white photo of a {}.", "the plushie {}.",
        "a dark photo of a {}.", "itap of a {}.", "graffiti of the {}.", "a toy {}.",
        "itap of my {}.", "a photo of a cool {}.", "a photo of a small {}.", "a tattoo of the {}.",
    ]);
}
