namespace MLNet.Align.Prompts;

/// <summary>WordNet class descriptions for a class list: the sentences and, per class, the sense used.</summary>
/// <param name="Descriptions">Gloss sentences of the classes found (<see cref="PromptSets.GlossSentences"/>); classes
/// not found have none, so they keep the plain templates only.</param>
/// <param name="ClassNames">The class names looked up, in the given order.</param>
/// <param name="Matches">One entry per class name, in the same order: its WordNet sense, or null when not found.</param>
public sealed record WordNetDescriptions(ClassDescriptions Descriptions, IReadOnlyList<string> ClassNames, IReadOnlyList<WordNetMatch?> Matches)
{
    /// <summary>The class names that got a gloss, in class order.</summary>
    public IReadOnlyList<string> Glossed => ClassNames.Where((_, i) => Matches[i] != null).ToArray();

    /// <summary>The class names not found in WordNet (plain templates only), in class order.</summary>
    public IReadOnlyList<string> NotFound => ClassNames.Where((_, i) => Matches[i] == null).ToArray();
}

/// <summary>
/// Class-description prompt sets built offline, in the spirit of CuPL (Pratt et al., ICCV 2023: class-specific
/// descriptive sentences averaged with the templates) and of the paper's two WordNet sentences per ImageNet class
/// ("This is a {class}, {synset gloss}", docs/method.md section 2.4), with the descriptions taken from an installed
/// WordNet instead of a language model. Use with <c>ZeroShot.ClassEmbeddingBuilder.Build</c>: templates + descriptions.
/// </summary>
public static class PromptSets
{
    /// <summary>The gloss sentence templates: <c>{c}</c> = class name as given, <c>{gloss}</c> = cleaned gloss. The
    /// third is the paper's WordNet sentence; the others are variants of CLIP's "a photo of a {}.".</summary>
    public static IReadOnlyList<string> GlossTemplates { get; } =
    [
        "a photo of a {c}, {gloss}.",
        "a {c}, which is {gloss}.",
        "this is a {c}, {gloss}.",
        "a picture of a {c}, {gloss}.",
        "{c}: {gloss}.",
    ];

    /// <summary>The <see cref="GlossTemplates"/> filled for one class ("a photo of a Sandal, a shoe consisting of a
    /// sole fastened by straps to the foot.").</summary>
    /// <exception cref="ArgumentException">A blank class name or gloss.</exception>
    public static IReadOnlyList<string> GlossSentences(string className, string gloss)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(className);
        ArgumentException.ThrowIfNullOrWhiteSpace(gloss);
        string c = className.Trim(), g = gloss.Trim();
        return GlossTemplates.Select(t => t.Replace("{c}", c, StringComparison.Ordinal).Replace("{gloss}", g, StringComparison.Ordinal)).ToArray();
    }

    /// <summary>Looks every class up in the WordNet dictionary at <paramref name="wordnetDirectory"/> (see
    /// <see cref="WordNetGlosses"/>: multi-word names, '/' alternatives, last word, singular forms; the MOST FREQUENT
    /// noun sense of a lemma with several) and returns the gloss sentences of the classes found plus the sense
    /// used for each class. Reads local files only.</summary>
    /// <param name="classNames">The class names, in label order.</param>
    /// <param name="wordnetDirectory">Folder with index.noun and data.noun (Debian: /usr/share/wordnet).</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">index.noun or data.noun is missing.</exception>
    /// <exception cref="InvalidDataException">A malformed dictionary file (the message names the file and line or offset).</exception>
    public static WordNetDescriptions WordNetLookup(IReadOnlyList<string> classNames, string wordnetDirectory)
    {
        ArgumentNullException.ThrowIfNull(classNames);
        return WordNetLookup(classNames, new WordNetGlosses(wordnetDirectory));
    }

    /// <summary><see cref="WordNetLookup(IReadOnlyList{string}, string)"/> with a dictionary already opened.</summary>
    /// <exception cref="InvalidDataException">A malformed data.noun line (the message names the file and offset).</exception>
    public static WordNetDescriptions WordNetLookup(IReadOnlyList<string> classNames, WordNetGlosses wn)
    {
        ArgumentNullException.ThrowIfNull(classNames);
        ArgumentNullException.ThrowIfNull(wn);
        var matches = classNames.Select(wn.Find).ToArray();
        var byClass = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var m in matches)
            if (m != null) byClass[m.ClassName.Trim()] = GlossSentences(m.ClassName, m.Gloss);
        return new WordNetDescriptions(new ClassDescriptions(byClass), classNames.ToArray(), matches);
    }

    /// <summary>The gloss sentences of the classes found in WordNet (<see cref="WordNetLookup(IReadOnlyList{string}, string)"/>'s
    /// <see cref="WordNetDescriptions.Descriptions"/>), to pass to <c>ZeroShot.ClassEmbeddingBuilder.Build</c> beside the
    /// templates.</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">index.noun or data.noun is missing.</exception>
    /// <exception cref="InvalidDataException">A malformed dictionary file.</exception>
    public static ClassDescriptions WordNet(IReadOnlyList<string> classNames, string wordnetDirectory) =>
        WordNetLookup(classNames, wordnetDirectory).Descriptions;

    /// <summary>All sentences of both sets per class (<paramref name="first"/>'s, then <paramref name="second"/>'s).</summary>
    public static ClassDescriptions Merge(ClassDescriptions first, ClassDescriptions second)
    {
        ArgumentNullException.ThrowIfNull(first);
        ArgumentNullException.ThrowIfNull(second);
        var d = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var c in first.Classes.Concat(second.Classes).Distinct(StringComparer.Ordinal))
            d[c] = first.For(c).Concat(second.For(c)).ToArray();
        return new ClassDescriptions(d);
    }
}
