namespace MLNet.Align.Charts;

// Shared as source with the out-of-process renderer (src/MLNet.Align.Plots links this file), so both sides of the
// JSON contract are one definition.

/// <summary>One chart for the renderer (serialised as JSON); see <see cref="Plots"/>.</summary>
internal sealed class PlotSpec
{
    /// <summary>"heatmap", "bars", "lines" or "contact" (a contact sheet of images with caption lines).</summary>
    public string Kind { get; set; } = "";
    public string Path { get; set; } = "";
    public string Title { get; set; } = "";
    /// <summary>Pixels; 0 = automatic.</summary>
    public int Width { get; set; }
    /// <summary>Pixels; 0 = automatic.</summary>
    public int Height { get; set; }
    public string XLabel { get; set; } = "";
    public string YLabel { get; set; } = "";
    public double?[][]? Values { get; set; }
    public string[]? RowLabels { get; set; }
    public string[]? ColumnLabels { get; set; }
    public string Format { get; set; } = "0.000";
    public string[]? Series { get; set; }
    public string[]? Groups { get; set; }
    public double[][]? SeriesValues { get; set; }
    public LineSeries[]? Lines { get; set; }
    public bool LogY { get; set; }
    public string Y2Label { get; set; } = "";
    /// <summary>Bars: values are fractions in [0, 1], shown as percentages (axis ticks and value labels).</summary>
    public bool Percent { get; set; }
    /// <summary>Bars: print each bar's value above it.</summary>
    public bool ValueLabels { get; set; }
    /// <summary>Contact sheet: the images and their caption lines, in reading order.</summary>
    public ContactItem[]? Items { get; set; }
    /// <summary>Contact sheet: images per row (0 = automatic).</summary>
    public int Columns { get; set; }
    /// <summary>A line under the title (e.g. what was measured and how the items were chosen); "" = none.</summary>
    public string Subtitle { get; set; } = "";
}

/// <summary>One cell of a contact sheet: an image file and the text lines under it.</summary>
internal sealed class ContactItem
{
    public string Path { get; set; } = "";
    public string[] Lines { get; set; } = [];
    /// <summary>Frames the cell green (true) or red (false); null = no frame.</summary>
    public bool? Correct { get; set; }
}

/// <summary>A named (x, y) series of a line chart.</summary>
internal sealed class LineSeries
{
    public string Name { get; set; } = "";
    public double[] X { get; set; } = [];
    public double[] Y { get; set; } = [];
    /// <summary>Plot against the right-hand y axis (labelled by <see cref="PlotSpec.Y2Label"/>).</summary>
    public bool RightAxis { get; set; }
}
